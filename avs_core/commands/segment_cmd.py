"""``avs segment``: masks, heatmaps and overlays for an image or video plus audio."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np

from ..config import load_yaml
from ..errors import InputError


def register(sub) -> None:
    p = sub.add_parser("segment", help="segment the sounding objects of an image or video")
    p.add_argument("input", help="image (bmp/jpg/png) or video (webm/mp4/...) file; live: /dev/videoN, a camera "
                                 "index or an rtsp:// / http:// URL (or a file with --live)")
    p.add_argument("--audio", help="WAV or any audio file; 'none' for silence; videos default to their own track")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--config", help="YAML with pipeline settings (config/pipeline.yaml keys)")
    p.add_argument("--device", help="auto | cpu | cuda")
    p.add_argument("--window-s", type=float, help="audio window length in seconds (default from config: 1.0)")
    p.add_argument("--stride-s", type=float, default=1.0, help="step between windows in seconds")
    p.add_argument("--max-windows", type=int, help="stop after this many windows")
    p.add_argument("--mic-positions", metavar="ARRAY.yaml",
                   help="microphone array of a multi-channel --audio: a preset name or a YAML with 'preset' or "
                        "'positions' [[x, y, z], ...] in metres in the camera optical frame (x right, y down, "
                        "z forward), optional 'translation'; masks only the instance at the sound's direction")
    p.add_argument("--camera-info", metavar="CAMERA.yaml",
                   help="camera intrinsics in ROS camera_calibration format (needed with --mic-positions)")
    live = p.add_argument_group("live sources (avs_core/live.py: frames and audio through the streaming core the ROS node uses)")
    live.add_argument("--live", action="store_true", help="treat a file as a live stream (played in real time)")
    live.add_argument("--seconds", type=float, help="stop a live run after this long (default: until the source ends / Ctrl-C)")
    live.add_argument("--display", action="store_true", help="show the overlays in a window (needs OpenCV with a GUI)")
    live.add_argument("--live-fps", type=float, default=10.0, help="frame rate written into the overlay video (default 10)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..live import is_live_source, run_live
    from ..media import iter_windows
    from ..pipeline import AVSPipeline, audio_span_s, pipeline_config
    from ..visualize import colorize_heatmap, overlay

    cfg = load_yaml(args.config) if args.config else {}
    cfg = cfg.get("pipeline", cfg)
    if args.device:
        cfg["device"] = args.device
    if args.window_s:
        cfg["window_s"] = args.window_s
    camera = _direction_inputs(args, cfg)
    cfg = pipeline_config(cfg)
    if args.live or is_live_source(str(args.input)):
        return run_live(args, AVSPipeline.from_config(cfg))
    # Read and check the input before loading any model: a bad file fails fast and alone.
    windows = iter_windows(args.input, args.audio, float(cfg["window_s"]), args.stride_s, args.max_windows,
                           keep_channels=bool(args.mic_positions), span_s=audio_span_s(cfg))
    first = next(windows)
    if args.mic_positions:
        _check_channels(first.audio, cfg["doa"], args.audio)
    pipe = AVSPipeline.from_config(cfg)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(args.input).stem
    summary = {"input": str(args.input), "audio": args.audio, "device": pipe.device, "windows": []}
    for i, window in enumerate(itertools.chain([first], windows)):
        window.camera = camera
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
        if res.doa is not None:
            entry["doa"] = res.doa.as_dict()
            if res.doa.likelihood is not None:
                cv2.imwrite(str(out / f"{name}_doa.png"), colorize_heatmap(res.doa.likelihood))
        summary["windows"].append(entry)
        labels = ", ".join(f"{n} {s:.2f}" for n, s in res.labels) or ("silence" if res.silent else "-")
        if res.heard_not_visible:
            labels += f"  (heard, not visible: {', '.join(res.heard_not_visible)})"
        print(f"[{window.t_start:6.2f}-{window.t_end:6.2f}s] mask {entry['mask_fraction']:.3f}  {labels}  ({res.timings_ms['total']:.0f} ms)"
              + (f"  {_doa_line(res.doa)}" if res.doa is not None else ""))
    (out / f"{stem}_summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {len(summary['windows'])} window(s) to {out}")
    return 0


def _direction_inputs(args, cfg: dict):
    """Put --mic-positions into cfg['doa'] and load --camera-info: the camera model, or None."""
    from ..doa_fusion import array_file_config
    from ..geometry import CameraModel

    if args.camera_info and not args.mic_positions:
        raise InputError("--camera-info is only used with --mic-positions (a multi-channel --audio's array)")
    if not args.mic_positions:
        return None
    if not args.camera_info:
        raise InputError("--mic-positions needs --camera-info CAMERA.yaml to place the direction in the image")
    cfg["doa"] = {**dict(cfg.get("doa") or {}), **array_file_config(args.mic_positions)}
    return CameraModel.from_yaml(args.camera_info)


def _check_channels(audio: np.ndarray, doa_cfg: dict, audio_path) -> None:
    from ..audio.doa import MicArray

    mics = MicArray.from_config(doa_cfg["mic_array"]).num_mics
    have = 1 if audio.ndim == 1 else audio.shape[1]
    need = max(doa_cfg.get("channels") or [mics - 1]) + 1
    if have < need or (not doa_cfg.get("channels") and have != mics):
        raise InputError(f"{audio_path} has {have} channel(s) but --mic-positions describes {mics} microphones: "
                         "give one audio channel per microphone (or 'channels' in ARRAY.yaml)")


def _doa_line(doa) -> str:
    if doa.estimate is None:
        return f"doa: - ({doa.reason})"
    el = "" if doa.estimate.elevation_deg is None else f" el {doa.estimate.elevation_deg:+.0f}"
    state = "used" if doa.used else f"not used: {doa.reason}"
    view = "" if doa.in_view is not False else " OUT OF VIEW"
    return f"doa az {doa.estimate.azimuth_deg:+.0f}{el} conf {doa.estimate.confidence:.2f}{view} ({state}; chosen {doa.chosen})"
