"""Entry point shared by the node executables (``ros2 run`` / launch call them with ``--ros-args``).

Kept apart from :mod:`avs_ros.cli` so the node modules and the ``avs`` command line do not
import each other.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Callable, Iterator

from avs_core.errors import AVSError

from .params import DEFAULT_CONFIG, SECTIONS, load_config

PARAMS_FILE_HELP = ("ROS parameters file (/**: ros__parameters: ..., e.g. `ros2 param dump` output) applied over --config "
                    "(same as --ros-args --params-file FILE)")


def with_params_file(ros_args: list[str], params_file: str | None) -> list[str]:
    """``ros_args`` followed by a ``--ros-args --params-file FILE`` block (ROS 2 accepts several blocks)."""
    if not params_file:
        return ros_args
    return [*ros_args, "--ros-args", "--params-file", params_file]


def load_config_arg(path: str | None) -> dict:
    """The YAML given, else config/avs.yaml when the source tree has it, else empty sections
    (an installed package gets its parameters from launch/--ros-args)."""
    if path is None and not DEFAULT_CONFIG.is_file():
        return {section: {} for section in SECTIONS}
    return load_config(path or DEFAULT_CONFIG)


@contextlib.contextmanager
def ros_session(args: list[str] | None = None) -> Iterator[None]:
    """rclpy initialised for the ``with`` body; Ctrl-C or an external shutdown ends it quietly.

    The body releases its nodes in its own ``finally``, which runs first; rclpy is shut down
    after, once (a signal may already have done it).
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException

    rclpy.init(args=args)
    try:
        yield
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if rclpy.ok():
            rclpy.shutdown()


@contextlib.contextmanager
def quiet_after_shutdown(node) -> Iterator[None]:
    """Wrap publishing from a worker thread. On SIGINT rclpy shuts the context down at once, before
    the node's own shutdown has stopped its threads, so a publish in flight fails on the dead
    context: that is the end of the run, not an error. Failures on a live context still raise."""
    try:
        yield
    except Exception:
        if node.context.ok():
            raise


def node_main(prog: str, run: Callable[[dict, list[str]], int], argv: list[str] | None = None) -> int:
    """Parse the node's own options (rclpy's ``remove_ros_args`` takes out every ``--ros-args`` block),
    then ``run(config, args)``; rclpy.init gets all the arguments and reads the ROS ones itself."""
    from rclpy.utilities import remove_ros_args

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--config", default=None, help=f"avs YAML with {'/'.join(SECTIONS)} sections (default {DEFAULT_CONFIG})")
    parser.add_argument("--params-file", default=None, help=PARAMS_FILE_HELP)
    args = parser.parse_args(remove_ros_args(args=argv))
    try:
        return run(load_config_arg(args.config), with_params_file(argv, args.params_file))
    except AVSError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
