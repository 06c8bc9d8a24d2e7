"""Per-stage CPU latency of the zero-shot pipeline on a 640x480 frame + 1 s of audio.

Prints, side by side in one run: speech (tagger + DeepLab), typing (tagger +
YOLOX, COCO-only class), silence (gate only) and the sustained frames/s.
Usage: python bench/bench_pipeline.py [--repeats 30] [--threads 2]
"""
from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np

from avs_core import assets
from avs_core.audio.frontend import read_audio, to_mono_float
from avs_core.image import read_image
from avs_core.pipeline import AVSPipeline
from avs_core.types import Window


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    pipe = AVSPipeline.from_config({"device": args.device, "num_threads": args.threads})
    frame = cv2.resize(read_image(assets.resolve("grace_hopper")), (640, 480), interpolation=cv2.INTER_AREA)

    span = pipe.audio_span_s  # the window plus the tagger's context, as the node and `avs segment` give it

    def audio(name):
        samples, sr = read_audio(assets.resolve(name))
        return to_mono_float(samples, sr)[int((3 - span) * sr):3 * sr], sr

    cases = {"speech": audio("speech"), "typing": audio("typing"),
             "silence": (np.zeros(int(span * 32000), np.float32), 32000)}
    pipe.warmup()
    rows = {}
    for name, (samples, sr) in cases.items():
        stages: dict[str, list[float]] = {}
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            res = pipe(Window(frame, samples, sr, 0.0, 1.0))
            for k, v in res.timings_ms.items():
                stages.setdefault(k, []).append(v)
        fps = args.repeats / (time.perf_counter() - t0)
        rows[name] = ({k: statistics.median(v) for k, v in stages.items()}, fps, res.labels)
    print(f"device={pipe.device} threads={args.threads} frame=640x480 audio={span:g} s repeats={args.repeats}")
    stage_names = sorted({k for r in rows.values() for k in r[0]} - {"total"}) + ["total"]
    print(f"{'stage (median ms)':22s}" + "".join(f"{n:>12s}" for n in rows))
    for s in stage_names:
        print(f"{s:22s}" + "".join(f"{r[0].get(s, float('nan')):12.1f}" for r in rows.values()))
    print(f"{'frames/s sustained':22s}" + "".join(f"{r[1]:12.1f}" for r in rows.values()))
    base = rows["speech"][1]
    print(f"{'fps ratio vs speech':22s}" + "".join(f"{r[1] / base:12.2f}" for r in rows.values()))
    for name, r in rows.items():
        print(f"  {name}: labels {r[2]}")


if __name__ == "__main__":
    main()
