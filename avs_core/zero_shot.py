"""Training-free sounding-object segmenter: audio tags -> ontology-aware bridge -> visible instances.

In the spirit of AV2T-SAM and TeSO, audio is first turned into text-level
semantics (AudioSet classes), the bridge (config/sound_sources.yaml, read along
the AudioSet ontology) says which visible object classes make those sounds, and
the decision is joint:

* a concept is chosen when it is heard (its calibrated evidence reaches
  ``audio_threshold``) AND seen (the vision backend finds at least one instance);
* generic evidence ("Vehicle", "Animal") selects the visible instances of the
  concepts below it only when nothing more specific is heard;
* every chosen instance is scored audio x visual; several may sound at once;
* what is heard but has no chosen visible source is reported as
  ``heard_not_visible`` (AudioSet names), and then the mask stays empty.

The heatmap is, per pixel, the vision model's probability that the pixel belongs
to a chosen instance (DeepLab softmax, YOLOX detection score over its box or SAM
mask), max over instances; the pipeline masks it at ``mask_threshold``. Vision
runs only when some visible source is heard, so silence and unmapped sounds cost
one tagger pass.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import cv2
import numpy as np

from .audio.tagger import AudioTagger
from .sound_sources import Concept, Hearing, SoundSourceMap
from .types import Instance, SegmenterOutput
from .vision.classes import COCO_CLASSES, VOC_CLASSES

# DeepLab speckles smaller than this fraction of the frame are not objects.
MIN_COMPONENT_FRACTION = 1e-3
# Components under this fraction of the class's largest one are fragments of a neighbour, not objects.
FRAGMENT_FRACTION = 0.1


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
        from .ontology import Ontology

        vision = dict(cfg.get("vision") or {})
        backends = list(vision.get("backends") or [])
        unknown = set(backends) - {"deeplab", "yolox"}
        if unknown or not backends:
            raise ConfigError(f"pipeline.vision.backends must be a non-empty subset of [deeplab, yolox], got {backends}")
        vision.setdefault("assets_dir", cfg.get("assets_dir"))
        vision.setdefault("num_threads", cfg.get("num_threads"))
        vision.setdefault("device", device)
        tagger = AudioTagger.from_assets(cfg.get("assets_dir"), device=device)
        bridge = SoundSourceMap.load(tagger.labels, cfg.get("sound_sources"), VOC_CLASSES, COCO_CLASSES,
                                     Ontology.load(assets_dir=cfg.get("assets_dir")))
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

    def warmup(self) -> None:
        """One pass of the tagger and of every vision backend (the first call of each is slow)."""
        rng = np.random.default_rng(0)
        frame = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
        self.tagger.tag(rng.normal(0, 0.1, 16000).astype(np.float32), 16000)
        if self.deeplab is not None:
            self.deeplab.segment(frame)
        if self.yolox is not None:
            self.yolox.instances(frame)

    def audio_tags(self, audio: np.ndarray, sample_rate: int, k: int = 5) -> list[tuple[str, float]]:
        return self.tagger.tag(audio, sample_rate).top(k)

    def segment(self, rgb: np.ndarray, audio: np.ndarray, sample_rate: int,
                cues: list[str] | None = None) -> SegmenterOutput:
        h, w = rgb.shape[:2]
        timings: dict[str, float] = {}
        t = time.perf_counter()
        tags = self.tagger.tag(audio, sample_rate)
        timings["audio_tagger"] = (time.perf_counter() - t) * 1e3
        hearing = self.bridge.hear(tags.probs, self.audio_threshold)
        # Candidate concepts with their audio evidence: specific first; a generic node adds
        # the concepts it covers (at its own score) only when nothing below it was heard.
        audio_score: dict[str, float] = {c.name: s for c, s in hearing.specific}
        concepts: dict[str, Concept] = {c.name: c for c, _ in hearing.specific}
        via: dict[str, str] = {}
        for _, score, target, covered in hearing.generic:
            for c in covered:
                if c.name not in concepts:
                    concepts[c.name], audio_score[c.name], via[c.name] = c, score, target
        instances = self._instances(rgb, concepts, audio_score, timings)
        t = time.perf_counter()
        instances.sort(key=lambda i: -i.score)
        heatmap = np.zeros((h, w), np.float32)
        for inst in instances:
            np.maximum(heatmap, inst.prob, out=heatmap)
        chosen: dict[str, float] = {}
        for inst in instances:
            chosen.setdefault(inst.label, inst.score)
        heard_not_visible = self._heard_not_visible(hearing, [concepts[n] for n in chosen],
                                                    [c for n, c in concepts.items() if n not in chosen], via)
        timings["fuse"] = (time.perf_counter() - t) * 1e3
        info: dict[str, Any] = {
            "audio_tags": tags.top(5),
            "heard": [(c.name, s) for c, s in hearing.specific]
            + [(g.name if to == g.name else f"{g.name} > {to}", s) for g, s, to, _ in hearing.generic],
        }
        return SegmenterOutput(heatmap, list(chosen.items()), timings, info, heard_not_visible, instances)

    def _instances(self, rgb: np.ndarray, concepts: dict[str, Concept], audio_score: dict[str, float],
                   timings: dict[str, float]) -> list[Instance]:
        """Visible instances of the candidate concepts: VOC pixel labels first (finer masks),
        COCO detections for classes VOC lacks or where DeepLab found nothing."""
        out: list[Instance] = []
        voc = [c for c in concepts.values() if c.voc and self.deeplab is not None]
        found: set[str] = set()
        if voc:
            t = time.perf_counter()
            maps = self.deeplab.segment(rgb).maps
            timings["vision_deeplab"] = (time.perf_counter() - t) * 1e3
            for c in voc:
                if c.voc in maps:
                    new = _components(maps[c.voc], c.name, audio_score[c.name])
                    out += new
                    found |= {c.name} if new else set()
        coco = [c for c in concepts.values() if c.coco and c.name not in found]
        if coco and self.yolox is not None:
            t = time.perf_counter()
            detections = self.yolox.instances(rgb)
            timings["vision_yolox"] = (time.perf_counter() - t) * 1e3
            source = "sam" if getattr(self.yolox, "sam", None) is not None else "yolox"
            by_class = {c.coco: c for c in coco}
            for det, region in detections:
                c = by_class.get(det.label)
                if c is None or not region.any():
                    continue
                prob = np.where(region, np.float32(det.score), np.float32(0))
                out.append(Instance(c.name, region, prob, audio_score[c.name] * det.score,
                                    audio_score[c.name], det.score, det.box, source))
        return out

    def _heard_not_visible(self, hearing: Hearing, chosen: list[Concept], unseen: list[Concept],
                           via: dict[str, str]) -> list[str]:
        """Heard sounds no chosen visible source accounts for, most specific names, best first."""
        names = [n for n, _ in hearing.sounds if not any(self.bridge.explains(n, c) for c in chosen)]
        # A concept heard only through combined evidence (no single class over the threshold)
        # is named by its strongest class, so "heard a dog" is never silent.
        for c in unseen:
            if c.name not in via and not any(n in c.classes for n in names):
                names.append(c.classes[int(np.argmax(hearing.evidence[list(c.audio_indices)]))])
        for g, _, target, covered in hearing.generic:
            if any(c in chosen for c in covered):
                continue
            # The node its evidence led to is the most specific name ("Aircraft", not "Vehicle").
            names = [n for n in names if n not in g.roots]
            if not any(n in self.bridge.ontology.subtree(target) for n in names):
                names.append(target)
        return list(dict.fromkeys(names))


def _components(conf: np.ndarray, label: str, audio: float) -> list[Instance]:
    """DeepLab class region -> one instance per connected component. Speckles are dropped;
    fragments (a leg cut off by a fence) join the nearest main component of the class."""
    region = (conf > 0).astype(np.uint8)
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(region, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if not n > 1:
        return []
    keep = [k for k in range(1, n) if areas[k - 1] >= MIN_COMPONENT_FRACTION * conf.size]
    main = [k for k in keep if areas[k - 1] >= FRAGMENT_FRACTION * areas.max()]
    owner = {k: k for k in main}
    for k in keep:
        if k not in owner:
            owner[k] = min(main, key=lambda m: float(np.sum((centroids[m] - centroids[k]) ** 2)))
    out = []
    for m in main:
        mask = np.isin(labels, [k for k, o in owner.items() if o == m])
        ys, xs = np.nonzero(mask)
        prob = np.where(mask, conf, np.float32(0)).astype(np.float32)
        visual = float(conf[mask].mean())
        out.append(Instance(label, mask, prob, audio * visual, audio, visual,
                            (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)), "deeplab"))
    return out
