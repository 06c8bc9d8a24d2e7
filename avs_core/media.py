"""Reading inputs for offline use: still images, videos with their audio track, and windows over them."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .audio.frontend import read_audio, to_mono_float
from .errors import InputError
from .image import read_image
from .types import Window

IMAGE_SUFFIXES = {".bmp", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


@dataclass
class Video:
    frames: list[np.ndarray]  # RGB uint8
    fps: float


def read_video(path: str | os.PathLike, max_seconds: float | None = None) -> Video:
    cap = cv2.VideoCapture(os.fspath(path))
    if not cap.isOpened():
        raise InputError(f"cannot open video {path}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    if not 0 < fps < 1000:
        cap.release()
        raise InputError(f"video {path} reports an unusable frame rate {fps!r}")
    frames = []
    limit = None if max_seconds is None else int(max_seconds * fps) + 1
    while limit is None or len(frames) < limit:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    if not frames:
        raise InputError(f"video {path} has no decodable frames")
    return Video(frames, float(fps))


def iter_windows(media: str | os.PathLike, audio: str | os.PathLike | None, window_s: float = 1.0,
                 stride_s: float = 1.0, max_windows: int | None = None) -> Iterator[Window]:
    """Windows over an image (+ audio file) or a video (+ its own track or a given audio file).

    Each window holds ``window_s`` of audio ending at t_end and the frame shown at t_end.
    ``audio == "none"`` means silence. A still image with no audio is an error: the
    caller must say "none" explicitly rather than get silent masks by accident.
    """
    path = Path(media)
    if not path.exists():
        raise InputError(f"input not found: {path}")
    is_image = path.suffix.lower() in IMAGE_SUFFIXES
    if is_image:
        frames, fps = [read_image(path)], None
    else:
        video = read_video(path)
        frames, fps = video.frames, video.fps
    if audio is None and is_image:
        raise InputError(f"{path} is a still image: give --audio WAV (or --audio none for silence)")
    if audio is not None and str(audio).lower() == "none":
        duration = window_s if is_image else len(frames) / fps
        sr, samples = 16000, np.zeros(int(duration * 16000), np.float32)
    else:
        raw, sr = read_audio(audio if audio is not None else path)
        samples = to_mono_float(raw, sr)
    duration = samples.shape[0] / sr
    n = int(np.floor((duration - window_s) / stride_s + 1e-9)) + 1 if duration >= window_s else 1
    if max_windows is not None:
        n = min(n, max_windows)
    for i in range(n):
        t_end = min(window_s + i * stride_s, duration)
        t_start = max(0.0, t_end - window_s)
        chunk = samples[int(round(t_start * sr)):int(round(t_end * sr))]
        frame = frames[0] if is_image else frames[min(len(frames) - 1, max(0, int(round(t_end * fps)) - 1))]
        yield Window(frame=frame, audio=chunk, sample_rate=sr, t_start=t_start, t_end=t_end)
