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


class VideoFrames:
    """A video's frames by index, decoded forward only: one frame in memory, however long the video."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._cap = cv2.VideoCapture(self.path)
        if not self._cap.isOpened():
            raise InputError(f"cannot open video {path}")
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not 0 < self.fps < 1000:
            self.close()
            raise InputError(f"video {path} reports an unusable frame rate {self.fps!r}")
        self.index, self._bgr = -1, None

    def at(self, index: int) -> np.ndarray:
        """RGB frame ``index`` (or the last one when the video is shorter); indices must not go back."""
        if index < self.index:
            raise ValueError("VideoFrames only moves forward")
        while self.index < index:
            ok, bgr = self._cap.read()
            if not ok:
                break
            self.index, self._bgr = self.index + 1, bgr
        if self._bgr is None:
            raise InputError(f"video {self.path} has no decodable frames")
        return cv2.cvtColor(self._bgr, cv2.COLOR_BGR2RGB)

    def frame_count(self) -> int:
        return int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def close(self) -> None:
        self._cap.release()


def read_video(path: str | os.PathLike, max_seconds: float | None = None) -> Video:
    """All frames (up to ``max_seconds``) in memory: for short clips only."""
    video = VideoFrames(path)
    limit = None if max_seconds is None else int(max_seconds * video.fps) + 1
    frames = []
    try:
        while limit is None or len(frames) < limit:
            frame = video.at(len(frames))
            if video.index < len(frames):
                break  # past the end
            frames.append(frame)
    finally:
        video.close()
    return Video(frames, video.fps)


def iter_windows(media: str | os.PathLike, audio: str | os.PathLike | None, window_s: float = 1.0,
                 stride_s: float = 1.0, max_windows: int | None = None,
                 keep_channels: bool = False, span_s: float = 0.0) -> Iterator[Window]:
    """Windows over an image (+ audio file) or a video (+ its own track or a given audio file).

    Each window holds ``window_s`` of audio ending at t_end and the frame shown at t_end;
    mono, or (n, channels) float32 with ``keep_channels`` (microphone-array direction).
    ``span_s`` > ``window_s``: each window's audio reaches back that far (as far as the
    recording goes), the context ``AVSPipeline.audio_span_s`` asks for.
    ``audio == "none"`` means silence. A still image with no audio is an error: the
    caller must say "none" explicitly rather than get silent masks by accident.
    """
    path = Path(media)
    if not path.exists():
        raise InputError(f"input not found: {path}")
    is_image = path.suffix.lower() in IMAGE_SUFFIXES
    if is_image:
        still = read_image(path)
    else:
        video = VideoFrames(path)
        video.at(0)  # fail now on an undecodable video, not after the audio was read
    if audio is None and is_image:
        raise InputError(f"{path} is a still image: give --audio WAV (or --audio none for silence)")
    if audio is not None and str(audio).lower() == "none":
        # Containers may not report a frame count: at least one window of silence.
        duration = window_s if is_image else max(window_s, video.frame_count() / video.fps)
        sr, samples = 16000, np.zeros(int(duration * 16000), np.float32)
    else:
        raw, sr = read_audio(audio if audio is not None else path)
        samples = to_mono_float(raw, sr)  # validates every layout, also when the channels are kept
        if keep_channels and raw.ndim == 2:
            samples = np.asarray(raw if raw.shape[0] >= raw.shape[1] else raw.T, np.float32)
    duration = samples.shape[0] / sr
    n = int(np.floor((duration - window_s) / stride_s + 1e-9)) + 1 if duration >= window_s else 1
    if max_windows is not None:
        n = min(n, max_windows)
    try:
        for i in range(n):
            t_end = min(window_s + i * stride_s, duration)
            t_start = max(0.0, t_end - window_s)
            chunk = samples[int(round(max(0.0, t_end - max(span_s, window_s)) * sr)):int(round(t_end * sr))]
            frame = still if is_image else video.at(max(0, int(round(t_end * video.fps)) - 1))
            yield Window(frame=frame, audio=chunk, sample_rate=sr, t_start=t_start, t_end=t_end)
    finally:
        if not is_image:
            video.close()
