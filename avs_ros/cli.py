"""``avs`` with the ROS subcommands (node, mic, demo) added to the core ones (assets, segment, ...).

``avs node --config config/avs.yaml [--ros-args -r image:=/camera/image_raw ...]`` starts the
same node as ``ros2 launch avs_ros avs.launch.py``, for machines without ros2launch.
"""
from __future__ import annotations

import argparse
import sys

from .node_main import PARAMS_FILE_HELP, load_config_arg, with_params_file
from .params import DEFAULT_CONFIG

EXTRA_MODULES = ["avs_ros.cli", "avs_ros.demo", "avs_ros.bag"]


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

    return _start(run, args)


def _run_mic(args) -> int:
    from .mic_node import run

    return _start(run, args)


def _start(run, args) -> int:
    ros_args = ["--ros-args", *args.ros_args] if args.ros_args else []
    return run(load_config_arg(args.config), with_params_file(ros_args, args.params_file))


def main(argv: list[str] | None = None) -> int:
    from avs_core import cli

    return cli.main(argv, extra_modules=EXTRA_MODULES)


if __name__ == "__main__":
    sys.exit(main())
