"""Training-free sounding-object segmenter: audio tags -> semantic bridge -> pixels.

In the spirit of AV2T-SAM and TeSO, audio is first turned into text-level
semantics (which AudioSet classes sound), the bridge (config/sound_sources.yaml)
names the visual classes that make those sounds, and only those classes' pixels
are kept. Vision runs only when some mapped sound is present, so silence and
unmatched sounds cost one tagger pass and give an empty mask.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np

from .audio.tagger import AudioTagger
from .sound_sources import SoundSourceMap
from .types import SegmenterOutput
from .vision.classes import COCO_CLASSES, VOC_CLASSES


class ZeroShotSegmenter:
    def __init__(self, tagger: AudioTagger, bridge: SoundSourceMap, deeplab=None, yolox=None,
                 audio_threshold: float = 0.2):
        if deeplab is None and yolox is None:
            raise ValueError("ZeroShotSegmenter needs at least one vision backend")
        self.tagger, self.bridge = tagger, bridge
        self.deeplab, self.yolox = deeplab, yolox
        self.audio_threshold = audio_threshold

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], device: str) -> "ZeroShotSegmenter":
        from .errors import ConfigError

        vision = dict(cfg.get("vision") or {})
        backends = list(vision.get("backends") or [])
        unknown = set(backends) - {"deeplab", "yolox"}
        if unknown or not backends:
            raise ConfigError(f"pipeline.vision.backends must be a non-empty subset of [deeplab, yolox], got {backends}")
        vision.setdefault("assets_dir", cfg.get("assets_dir"))
        vision.setdefault("num_threads", cfg.get("num_threads"))
        vision.setdefault("device", device)
        tagger = AudioTagger.from_assets(cfg.get("assets_dir"), device=device)
        bridge = SoundSourceMap.load(tagger.labels, cfg.get("sound_sources"), VOC_CLASSES, COCO_CLASSES)
        deeplab = yolox = None
        if "deeplab" in backends:
            from .vision.deeplab import DeepLabV3VOC

            deeplab = DeepLabV3VOC.from_config(vision)
        if "yolox" in backends:
            from .vision.yolox import YoloxCOCO

            yolox = YoloxCOCO.from_config(vision)
        return cls(tagger, bridge, deeplab, yolox, float(cfg["audio_threshold"]))

    def update(self, cfg: Mapping[str, Any]) -> None:
        self.audio_threshold = float(cfg["audio_threshold"])

    def audio_tags(self, audio: np.ndarray, sample_rate: int, k: int = 5) -> list[tuple[str, float]]:
        return self.tagger.tag(audio, sample_rate).top(k)

    def segment(self, rgb: np.ndarray, audio: np.ndarray, sample_rate: int,
                cues: list[str] | None = None) -> SegmenterOutput:
        h, w = rgb.shape[:2]
        timings: dict[str, float] = {}
        t = time.perf_counter()
        tags = self.tagger.tag(audio, sample_rate)
        timings["audio_tagger"] = (time.perf_counter() - t) * 1e3
        sounding = self.bridge.sounding(tags.probs, self.audio_threshold)
        info: dict[str, Any] = {"audio_tags": tags.top(5), "sounding": [(c.name, s) for c, s in sounding]}
        heatmap = np.zeros((h, w), np.float32)
        mask = np.zeros((h, w), bool)
        # Prefer VOC pixel labels; COCO boxes cover the classes VOC lacks (keyboard, phone, ...).
        voc_needed = self.deeplab is not None and any(c.voc for c, _ in sounding)
        coco_needed = self.yolox is not None and any(c.coco and not (voc_needed and c.voc) for c, _ in sounding)
        voc_maps = self._run(self.deeplab, rgb, timings, "vision_deeplab") if voc_needed else {}
        coco_maps = self._run(self.yolox, rgb, timings, "vision_yolox") if coco_needed else {}
        t = time.perf_counter()
        labels = []
        for concept, score in sounding:
            conf = voc_maps.get(concept.voc) if voc_needed and concept.voc else coco_maps.get(concept.coco)
            if conf is None:
                continue  # sounding but not visible: nothing to segment
            np.maximum(heatmap, conf * score, out=heatmap)
            mask |= conf > 0  # backends give the class region as conf > 0 (vision.base.ClassMaps)
            labels.append((concept.name, score))
        timings["fuse"] = (time.perf_counter() - t) * 1e3
        return SegmenterOutput(heatmap, labels, timings, info)

    @staticmethod
    def _run(backend, rgb, timings, key) -> dict[str, np.ndarray]:
        t = time.perf_counter()
        maps = backend.segment(rgb).maps
        timings[key] = (time.perf_counter() - t) * 1e3
        return maps
