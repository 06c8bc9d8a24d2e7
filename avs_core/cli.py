"""``avs`` command line: each subcommand lives in its own module with ``register(subparsers)``."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .errors import AVSError

# Modules that add subcommands; each defines register(subparsers) and sets func=handler(args)->int.
COMMAND_MODULES = [
    "avs_core.commands.assets_cmd",
    "avs_core.commands.segment_cmd",
    "avs_core.commands.eval_cmd",
    "avs_core.commands.synth_cmd",
    "avs_core.cues.cli",
]


def build_parser(extra_modules: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avs", description="Audio-visual sounding-object segmentation")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES + list(extra_modules or []):
        importlib.import_module(name).register(sub)
    return parser


def _quiet_native_logs() -> None:
    """OpenCV logs its own errors to stderr; ours already say what went wrong, once."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def main(argv: list[str] | None = None, extra_modules: list[str] | None = None) -> int:
    parser = build_parser(extra_modules)
    args = parser.parse_args(argv)
    _quiet_native_logs()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except AVSError as exc:
        # Library errors are user-facing: one line, no traceback.
        print(f"avs {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
