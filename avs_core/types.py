"""The data that flows through the pipeline: an audio-visual window in, a result out."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Window:
    """One synchronized audio-visual window.

    frame: HxWx3 uint8 RGB (the frame whose mask we want; other layouts are
        normalised by ``avs_core.image.to_rgb8``).
    audio: samples ending at the frame's time, shape (n,) or (n, channels),
        any float or integer dtype; resampled/mixed by the audio front-end.
    sample_rate: Hz of ``audio``.
    t_start/t_end: window bounds in seconds (stream clock; t_end = frame stamp).
    cues: optional scene text cues (captioner/LLM/tagger) for text-aware models.
    """

    frame: np.ndarray
    audio: np.ndarray
    sample_rate: int
    t_start: float = 0.0
    t_end: float = 0.0
    cues: list[str] | None = None


@dataclass
class AVSResult:
    """Output at the input frame's resolution.

    mask: HxW bool, pixels of sounding objects.
    heatmap: HxW float32 in [0, 1], per-pixel sounding-object confidence.
    labels: sounding labels with scores, best first.
    timings_ms: per-stage wall times in milliseconds.
    silent: True when the audio gate found no sound (mask is then empty).
    """

    mask: np.ndarray
    heatmap: np.ndarray
    labels: list[tuple[str, float]] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    silent: bool = False
    info: dict = field(default_factory=dict)


@dataclass
class SegmenterOutput:
    """What a segmenter (zero-shot or learned model) hands back to the pipeline.

    heatmap: HxW float32 in [0,1] at frame size. mask: HxW bool, or None to let the
    pipeline threshold the heatmap at ``mask_threshold``.
    """

    heatmap: np.ndarray
    mask: np.ndarray | None = None
    labels: list[tuple[str, float]] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
