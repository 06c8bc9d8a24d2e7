"""The interface every vision backend implements: RGB frame in, per-class pixel confidences out."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..errors import ConfigError
from .classes import VOCABULARIES


@dataclass
class ClassMaps:
    """Per-class confidence maps at the input frame's resolution.

    vocabulary: 'voc' or 'coco' (names index ``classes.VOCABULARIES``).
    maps: class name -> HxW float32 in [0, 1], only for classes found in the
        frame. A map is > 0 exactly on the pixels assigned to that class and
        holds the backend's confidence there (softmax probability for DeepLab,
        detection score for YOLOX boxes / SAM masks); 0 elsewhere. So the class
        region is ``maps[name] > 0`` whatever the backend's score scale.
    size: (height, width) of the frame.
    timings_ms: per-step wall times of this call.
    """

    vocabulary: str
    size: tuple[int, int]
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.vocabulary not in VOCABULARIES:
            raise ValueError(f"unknown vocabulary {self.vocabulary!r}")

    def mask(self, name: str) -> np.ndarray:
        """HxW bool region of ``name`` (all False when the class was not found)."""
        conf = self.maps.get(name)
        return np.zeros(self.size, bool) if conf is None else conf > 0


class VisionBackend(ABC):
    vocabulary: str

    @abstractmethod
    def segment(self, rgb: np.ndarray) -> ClassMaps:
        """Class maps for an RGB frame (any layout ``avs_core.image.to_rgb8`` accepts)."""


def num_threads_from(cfg: Mapping[str, Any], default: int = 2) -> int:
    value = cfg.get("num_threads")
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"vision.num_threads must be a positive integer, got {value!r}")
    return value
