"""The data that flows through the pipeline: an audio-visual window in, a result out."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    camera: optional ``avs_core.geometry.CameraModel`` (intrinsics from camera_info); with
        multi-channel audio and ``pipeline.doa.mic_array`` it enables direction fusion.
    array_pose: optional ``avs_core.geometry.ArrayPose`` (array -> camera, e.g. from TF);
        None uses ``pipeline.doa.array_to_camera``.
    """

    frame: np.ndarray
    audio: np.ndarray
    sample_rate: int
    t_start: float = 0.0
    t_end: float = 0.0
    cues: list[str] | None = None
    camera: Any = None
    array_pose: Any = None


@dataclass
class Instance:
    """One visible candidate sounding object: an instance of a concept that is heard and seen.

    label: the bridge concept (config/sound_sources.yaml), e.g. "dog".
    mask: HxW bool, the instance's pixels (YOLOX box or SAM mask for COCO
        classes, a DeepLab connected component for VOC classes).
    prob: HxW float32 in [0, 1], per-pixel probability that the pixel belongs to
        this sounding instance (0 outside ``mask``). The segmenter's heatmap is
        the pixel-wise max of ``prob`` over its instances, so a later stage that
        re-weights instances (e.g. by sound direction) can recompute it.
    score: joint evidence audio x visual in [0, 1] (``audio * visual``).
    audio: calibrated probability that the concept is heard.
    visual: the vision backend's confidence in the instance (detection score, mean softmax).
    box: (x0, y0, x1, y1) in frame pixels, or None.
    source: the vision backend that found it ("yolox", "sam", "deeplab").
    """

    label: str
    mask: np.ndarray
    prob: np.ndarray
    score: float
    audio: float
    visual: float
    box: tuple[float, float, float, float] | None = None
    source: str = ""


@dataclass
class AVSResult:
    """Output at the input frame's resolution.

    mask: HxW bool, pixels of sounding objects (heatmap >= pipeline.mask_threshold).
    heatmap: HxW float32 in [0, 1], per-pixel probability of belonging to a sounding object.
    labels: sounding labels with scores, best first.
    timings_ms: per-stage wall times in milliseconds.
    silent: True when the audio gate found no sound (mask is then empty).
    heard_not_visible: sounds heard above threshold whose source the vision models
        do not cover or do not find in the frame (AudioSet names, best first).
    instances: the visible candidate sounding objects (zero-shot model; empty otherwise).
    doa: ``avs_core.doa_fusion.DirectionResult`` when a mic array is configured, else None.
    """

    mask: np.ndarray
    heatmap: np.ndarray
    labels: list[tuple[str, float]] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    silent: bool = False
    info: dict = field(default_factory=dict)
    heard_not_visible: list[str] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    doa: Any = None


@dataclass
class SegmenterOutput:
    """What a segmenter (zero-shot or learned model) hands back to the pipeline.

    heatmap: HxW float32 in [0,1] at frame size, a per-pixel probability; the
    pipeline makes the mask as heatmap >= ``mask_threshold`` for every model.
    """

    heatmap: np.ndarray
    labels: list[tuple[str, float]] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    heard_not_visible: list[str] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
