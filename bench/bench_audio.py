"""CPU latency of the audio path for one 1 s window: front-end (48 kHz stereo -> 32 kHz mono) and tagger.

Usage: python bench/bench_audio.py [--threads 2] [--runs 50]
Prints median and 90th-percentile milliseconds per stage and the top labels of the shared recordings.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from avs_core.assets import resolve
from avs_core.audio import AudioFrontend, AudioTagger, read_audio


def timed(fn, runs: int) -> tuple[float, float]:
    fn()  # warm-up: first call allocates and picks kernels
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(ms)), float(np.percentile(ms, 90))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    tagger = AudioTagger.from_assets()
    frontend = AudioFrontend(sample_rate=32000, window_s=1.0)
    speech, sr = read_audio(resolve("speech"))
    stream = np.stack([np.interp(np.arange(0, len(speech), 2 / 3), np.arange(len(speech)), speech)] * 2, axis=1)
    stream = (stream * 32767).astype(np.int16)  # 10 s, 48 kHz, stereo int16: a typical microphone buffer
    window = frontend.window(stream, 48000)

    stages = {
        "frontend.window (48k stereo int16 -> 32k mono 1 s)": lambda: frontend.window(stream, 48000),
        "tagger.tag (1 s @ 32 kHz)": lambda: tagger.tag(window, 32000),
        "tagger.tag (1 s @ 48 kHz stereo int16, incl. front-end)": lambda: tagger.tag(stream[-48000:], 48000),
        "tagger.tag_batch (8 x 1 s)": lambda: tagger.tag_batch([window] * 8, 32000),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.runs} runs")
    for name, fn in stages.items():
        med, p90 = timed(fn, args.runs)
        print(f"  {name:58s} median {med:7.2f} ms   p90 {p90:7.2f} ms")

    for name in ("speech", "music", "typing"):
        res = tagger.tag(*read_audio(resolve(name)))
        print(f"  {name:7s} (10 s): " + ", ".join(f"{lab} {p:.3f}" for lab, p in res.top(5)))


if __name__ == "__main__":
    main()
