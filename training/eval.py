#!/usr/bin/env python3
"""Evaluate a trained checkpoint: same as ``avs eval`` (see avs_core/commands/eval_cmd.py).

    python training/eval.py --checkpoint runs/x/model.safetensors --config training/configs/x.yaml \
        [--splits test unseen] [--conditions normal mute noise10 noise40] [--protocol video|video_nonempty|frame] [--json out.json]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avs_core.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["eval"] + sys.argv[1:]))
