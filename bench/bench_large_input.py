#!/usr/bin/env python3
"""Large frames: one zero-shot window on an 8000x8000 frame with pipeline.max_side at its default
(inference at 1024 px, outputs at 8000x8000) vs uncapped, side by side, each in a fresh process.

    .venv/bin/python bench/bench_large_input.py [--side 8000] [--repeats 2]

Prints wall time per window and peak RSS of each process, and their ratios.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
import cv2
from avs_core import assets
from avs_core.audio.frontend import read_audio, to_mono_float
from avs_core.image import read_image
from avs_core.pipeline import AVSPipeline
from avs_core.types import Window

side, max_side, repeats = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
pipe = AVSPipeline.from_config({"device": "cpu", "max_side": max_side})
frame = cv2.resize(read_image(assets.resolve("grace_hopper")), (side, side), interpolation=cv2.INTER_LINEAR)
samples, sr = read_audio(assets.resolve("speech"))
audio = to_mono_float(samples, sr)[2 * sr:3 * sr]
pipe(Window(frame=frame[:64, :64], audio=audio, sample_rate=sr))  # load models outside the timing
times = []
for _ in range(repeats):
    t = time.perf_counter()
    res = pipe(Window(frame=frame, audio=audio, sample_rate=sr))
    times.append(time.perf_counter() - t)
print(json.dumps({"s": min(times), "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  "mask": list(res.mask.shape), "mask_fraction": float(res.mask.mean()), "labels": res.labels[:1]}))
"""


def run(side: int, max_side: int, repeats: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(side), str(max_side), str(repeats)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--side", type=int, default=8000)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    capped = run(args.side, 1024, args.repeats)
    uncapped = run(args.side, 10 * args.side, args.repeats)
    for name, r in (("max_side 1024", capped), ("uncapped", uncapped)):
        print(f"{name:<14} {r['s']:7.2f} s/window  peak RSS {r['rss_gb']:5.2f} GB  mask {r['mask']} "
              f"fraction {r['mask_fraction']:.3f} {r['labels']}")
    print(f"uncapped / capped: time x{uncapped['s'] / capped['s']:.1f}, peak RSS x{uncapped['rss_gb'] / capped['rss_gb']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
