"""``avs segment``: masks, heatmaps and overlays for an image or video plus audio."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np

from ..config import load_yaml


def register(sub) -> None:
    p = sub.add_parser("segment", help="segment the sounding objects of an image or video")
    p.add_argument("input", help="image (bmp/jpg/png) or video (webm/mp4/...) file")
    p.add_argument("--audio", help="WAV or any audio file; 'none' for silence; videos default to their own track")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--config", help="YAML with pipeline settings (config/pipeline.yaml keys)")
    p.add_argument("--device", help="auto | cpu | cuda")
    p.add_argument("--window-s", type=float, help="audio window length in seconds (default from config: 1.0)")
    p.add_argument("--stride-s", type=float, default=1.0, help="step between windows in seconds")
    p.add_argument("--max-windows", type=int, help="stop after this many windows")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..media import iter_windows
    from ..pipeline import AVSPipeline, pipeline_config
    from ..visualize import colorize_heatmap, overlay

    cfg = load_yaml(args.config) if args.config else {}
    cfg = cfg.get("pipeline", cfg)
    if args.device:
        cfg["device"] = args.device
    if args.window_s:
        cfg["window_s"] = args.window_s
    cfg = pipeline_config(cfg)
    # Read and check the input before loading any model: a bad file fails fast and alone.
    windows = iter_windows(args.input, args.audio, float(cfg["window_s"]), args.stride_s, args.max_windows)
    first = next(windows)
    pipe = AVSPipeline.from_config(cfg)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(args.input).stem
    summary = {"input": str(args.input), "audio": args.audio, "device": pipe.device, "windows": []}
    for i, window in enumerate(itertools.chain([first], windows)):
        res = pipe(window)
        name = f"{stem}_{i:04d}"
        cv2.imwrite(str(out / f"{name}_mask.png"), res.mask.astype(np.uint8) * 255)
        np.save(out / f"{name}_heatmap.npy", res.heatmap)
        cv2.imwrite(str(out / f"{name}_heatmap.png"), colorize_heatmap(res.heatmap))
        cv2.imwrite(str(out / f"{name}_overlay.png"), overlay(window.frame, res.mask, res.heatmap, res.labels,
                                                                heard_not_visible=res.heard_not_visible))
        entry = {
            "window": i, "t_start": round(window.t_start, 3), "t_end": round(window.t_end, 3),
            "silent": res.silent, "labels": [[n, round(s, 4)] for n, s in res.labels],
            "heard_not_visible": list(res.heard_not_visible),
            "mask_fraction": round(float(res.mask.mean()), 5),
            "audio_tags": [[n, round(s, 4)] for n, s in res.info.get("audio_tags", [])],
            "timings_ms": {k: round(v, 2) for k, v in res.timings_ms.items()},
        }
        summary["windows"].append(entry)
        labels = ", ".join(f"{n} {s:.2f}" for n, s in res.labels) or ("silence" if res.silent else "-")
        print(f"[{window.t_start:6.2f}-{window.t_end:6.2f}s] mask {entry['mask_fraction']:.3f}  {labels}  ({res.timings_ms['total']:.0f} ms)")
    (out / f"{stem}_summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {len(summary['windows'])} window(s) to {out}")
    return 0
