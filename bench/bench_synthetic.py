#!/usr/bin/env python3
"""CPU benchmark: do the models learn to segment what *sounds*, not what is visible?

Trains each model (tiny random backbones, no pretrained weights) on the synthetic
audio-visual set for a fixed wall-clock budget with training/train.py, then
evaluates on the held-out clips of seen classes ("test") and on clips with
held-out classes ("unseen"), with normal audio and with audio control (muted,
noise-only at 10 dB and 40 dB). Prints one table and writes bench.json.

    python bench/bench_synthetic.py [--models gavs teso] [--minutes 20] [--jobs 2] [--out runs/bench]

Targets checked at the end (issue 5): held-out mIoU >= 0.6, predicted area
drops >= 80 % under mute and under 10 dB noise, and visible-but-silent objects
mostly left out (fewer than half of their pixels predicted; the rate itself is
in the table's vis-sil column). ``--report`` reprints the table of a finished run.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIGS = {"gavs": "training/configs/synthetic_gavs.yaml", "teso": "training/configs/synthetic_teso.yaml",
           "teso_sam": "training/configs/synthetic_teso_sam.yaml"}
TARGET_MIOU, TARGET_AREA_DROP, TARGET_VIS_SILENT = 0.6, 0.8, 0.5
CONDITION_ORDER = ("normal", "mute", "noise10", "noise40")


def launch(model: str, out: Path, args) -> subprocess.Popen:
    cmd = [sys.executable, str(REPO / "training" / "train.py"), "--config", str(REPO / CONFIGS[model]),
           f"output_dir={out / model}", f"train.max_minutes={args.minutes}", f"train.max_steps={args.max_steps}",
           f"train.threads={args.threads}", "train.progress=false", "eval.splits=[test, unseen]",
           "eval.conditions=[normal, mute, noise10, noise40]", *args.overrides]
    log = open(out / f"{model}.log", "w")
    return subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)


def fmt(v, pct=False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{100 * v:.1f}%" if pct else f"{v:.3f}"


def table(results: dict) -> str:
    head = (f"{'model':<8} {'split':<7} {'audio':<8} {'mIoU':>6} {'F':>6} {'area':>6} {'Δm':>7} {'Δf':>7} "
            f"{'Δarea':>7} {'silent':>7} {'vis-sil':>7} {'train':>12}")
    lines = [head, "-" * len(head)]
    for model, m in results.items():
        t = m["train"]
        train_txt = f"{t['train_seconds'] / 60:.1f}min/{t['steps']}"
        for split, res in m["eval"].items():
            conds = sorted(res["conditions"], key=lambda c: CONDITION_ORDER.index(c) if c in CONDITION_ORDER else 99)
            for cond in conds:
                r = res["conditions"][cond]
                lines.append(
                    f"{model:<8} {split:<7} {cond:<8} {fmt(r['miou']):>6} {fmt(r['fscore']):>6} {fmt(r['area']):>6} "
                    f"{fmt(r.get('delta_m'), True):>7} {fmt(r.get('delta_f'), True):>7} {fmt(r.get('area_drop'), True):>7} "
                    f"{fmt(r['silent_score']):>7} {fmt(r['visible_silent_rate']):>7} {train_txt:>12}")
    return "\n".join(lines)


def verdict(model: str, m: dict) -> str:
    test = m["eval"]["test"]["conditions"]
    if not test["normal"]["area"] > 0:
        return f"{model}: predicts no sounding pixels at all (did not learn): FAIL"
    checks = {
        f"held-out mIoU >= {TARGET_MIOU}": test["normal"]["miou"] >= TARGET_MIOU,
        f"area drop (mute) >= {TARGET_AREA_DROP:.0%}": test["mute"]["area_drop"] >= TARGET_AREA_DROP,
        f"area drop (noise10) >= {TARGET_AREA_DROP:.0%}": test["noise10"]["area_drop"] >= TARGET_AREA_DROP,
        f"visible-but-silent < {TARGET_VIS_SILENT:.0%}": test["normal"]["visible_silent_rate"] < TARGET_VIS_SILENT,
    }
    return f"{model}: " + ", ".join(f"{k}: {'PASS' if ok else 'FAIL'}" for k, ok in checks.items())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--minutes", type=float, default=20.0, help="training wall-clock budget per model")
    p.add_argument("--max-steps", type=int, default=2400, help="step cap (the poly schedule spans it)")
    p.add_argument("--jobs", type=int, default=1, help="models trained at the same time")
    p.add_argument("--threads", type=int, default=1, help="torch threads per training process")
    p.add_argument("--out", default="runs/bench_synthetic")
    p.add_argument("--report", action="store_true", help="only print the table of the runs already in --out")
    p.add_argument("overrides", nargs="*", help="key=value overrides passed to every training run")
    args = p.parse_args()
    out = (REPO / args.out) if not Path(args.out).is_absolute() else Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.monotonic()
    pending, running = ([] if args.report else list(args.models)), {}
    while pending or running:
        while pending and len(running) < args.jobs:
            model = pending.pop(0)
            running[model] = launch(model, out, args)
        for model, proc in list(running.items()):
            if proc.poll() is not None:
                del running[model]
                if proc.returncode != 0:
                    print(f"{model}: training failed (exit {proc.returncode}); see {out / (model + '.log')}", file=sys.stderr)
        time.sleep(2)
    results = {}
    for model in args.models:
        path = out / model / "metrics.json"
        if path.is_file():
            results[model] = json.loads(path.read_text())
    if not results:
        return 1
    print(table(results))
    for model, m in results.items():
        print(verdict(model, m))
    if not args.report:
        print(f"wall time {(time.monotonic() - t0) / 60:.1f} min (training + evaluation, {args.jobs} job(s) at a time)")
    (out / "bench.json").write_text(json.dumps(results, indent=1, default=float))
    return 0 if len(results) == len(args.models) else 1


if __name__ == "__main__":
    sys.exit(main())
