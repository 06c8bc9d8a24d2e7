"""Cues from a closed-set vision backend: the sounding-capable classes visible in the frame.

An image-based fallback that needs only the shared assets (YOLOX-Nano COCO or
DeepLabV3 VOC): like TeSO-n it lists objects present in the scene, but from
detector classes instead of caption nouns. Only classes in the sounding-object
vocabulary become cues (a dog yes, a dining table no), most confident first.
Opt-in (``cues.backend: detector``): ``auto`` keeps the captioner/tagger order.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .types import CueProvider, Cues
from .vocabulary import Vocabulary, canonical, default_vocabulary

DETECTORS = ("yolox", "deeplab")


def classes_to_cues(confidences: Mapping[str, float], vocab: Vocabulary, min_score: float, max_cues: int) -> list[str]:
    """Cue names for (class name -> confidence), best first, sounding-capable classes only."""
    cues: list[str] = []
    for name, score in sorted(confidences.items(), key=lambda kv: -kv[1]):
        cue = vocab.terms.get(canonical(name))
        if score >= min_score and cue and cue not in cues:
            cues.append(cue)
    return cues[:max_cues]


class VisionCueProvider(CueProvider):
    """Wraps an ``avs_core.vision`` backend (anything with ``segment(rgb) -> ClassMaps``)."""

    source = "detector"

    def __init__(self, backend, max_cues: int = 5, min_score: float = 0.3, vocabulary: Vocabulary | None = None):
        self.backend = backend
        self.max_cues = int(max_cues)
        self.min_score = float(min_score)
        self.vocab = vocabulary or default_vocabulary()
        self.source = f"detector:{getattr(backend, 'vocabulary', 'vision')}"

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], max_cues: int) -> VisionCueProvider:
        """``cfg``: the ``cues.detector`` section: kind (yolox | deeplab), min_score, plus vision keys."""
        from ..errors import ConfigError

        kind = cfg.get("kind", "yolox")
        if kind == "yolox":
            from ..vision.yolox import YoloxCOCO as Backend
        elif kind == "deeplab":
            from ..vision.deeplab import DeepLabV3VOC as Backend
        else:
            raise ConfigError(f"cues.detector.kind must be one of {DETECTORS}, got {kind!r}")
        return cls(Backend.from_config(cfg), max_cues=max_cues, min_score=cfg.get("min_score", 0.3))

    def compute_batch(self, frames, audios, sample_rate, stamps) -> list[Cues]:
        out = []
        for frame, stamp in zip(frames, stamps):
            texts: list[str] = []
            if frame is not None:
                maps = self.backend.segment(frame).maps
                texts = classes_to_cues({n: float(np.max(m)) for n, m in maps.items()}, self.vocab,
                                        self.min_score, self.max_cues)
            out.append(Cues(tuple(texts), self.source, stamp, age_s=0.0))
        return out
