"""``avs`` with the ROS subcommands (node, mic, demo) added to the core ones (assets, segment, ...).

``avs node --config config/avs.yaml [--ros-args -r image:=/camera/image_raw ...]`` starts the
same node as ``ros2 launch avs_ros avs.launch.py``, for machines without ros2launch.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from avs_core.errors import AVSError

from .params import DEFAULT_CONFIG, SECTIONS, load_config

EXTRA_MODULES = ["avs_ros.cli", "avs_ros.demo", "avs_ros.bag"]


def split_ros_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """(own arguments, ['--ros-args', ...]) — everything from --ros-args on belongs to rclpy."""
    if "--ros-args" in argv:
        i = argv.index("--ros-args")
        return argv[:i], argv[i:]
    return argv, []


PARAMS_FILE_HELP = ("ROS parameters file (/**: ros__parameters: ..., e.g. `ros2 param dump` output) applied over --config "
                    "(same as --ros-args --params-file FILE)")


def with_params_file(ros_args: list[str], params_file: str | None) -> list[str]:
    """``ros_args`` with ``--params-file FILE`` added inside the --ros-args block."""
    if not params_file:
        return ros_args
    return [*(ros_args or ["--ros-args"]), "--params-file", params_file]


def load_config_arg(path: str | None) -> dict:
    """The YAML given, else config/avs.yaml when the source tree has it, else empty sections
    (an installed package gets its parameters from launch/--ros-args)."""
    if path is None and not DEFAULT_CONFIG.is_file():
        return {section: {} for section in SECTIONS}
    return load_config(path or DEFAULT_CONFIG)


def node_main(prog: str, run: Callable[[dict, list[str]], int], argv: list[str] | None) -> int:
    """Shared entry point of the node executables (ros2 run / launch call these with --ros-args)."""
    own, ros_args = split_ros_args(list(sys.argv[1:] if argv is None else argv))
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--config", default=None, help=f"avs YAML with {'/'.join(SECTIONS)} sections (default {DEFAULT_CONFIG})")
    parser.add_argument("--params-file", default=None, help=PARAMS_FILE_HELP)
    args = parser.parse_args(own)
    try:
        return run(load_config_arg(args.config), with_params_file(ros_args, args.params_file))
    except AVSError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2


def register(sub) -> None:
    for name, help_text in (("node", "run avs_node (camera + microphone -> mask/heatmap/overlay/cues topics)"),
                            ("mic", "run mic_node (microphone -> stamped audio topic)")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", default=None, help=f"avs YAML (default {DEFAULT_CONFIG})")
        p.add_argument("--params-file", default=None, help=PARAMS_FILE_HELP)
        p.add_argument("--ros-args", dest="ros_args", nargs=argparse.REMAINDER, default=[],
                       help="everything after this goes to ROS (remaps -r image:=/cam, parameters -p qos:=reliable, ...)")
        p.set_defaults(func=_run_node if name == "node" else _run_mic)


def _run_node(args) -> int:
    from .avs_node import run

    return run(load_config_arg(args.config), with_params_file(["--ros-args", *args.ros_args] if args.ros_args else [],
                                                               args.params_file))


def _run_mic(args) -> int:
    from .mic_node import run

    return run(load_config_arg(args.config), with_params_file(["--ros-args", *args.ros_args] if args.ros_args else [],
                                                               args.params_file))


def main(argv: list[str] | None = None) -> int:
    from avs_core import cli

    return cli.main(argv, extra_modules=EXTRA_MODULES)


if __name__ == "__main__":
    sys.exit(main())
