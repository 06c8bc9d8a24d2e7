"""YOLOX-Nano COCO detector (ONNX through OpenCV DNN); boxes become per-class maps.

The shared ONNX export takes 1x3x416x416 BGR 0-255 (letterboxed top-left,
padding 114, no mean/std) and returns 1x3549x85 raw head outputs: per anchor
point (52x52, 26x26, 13x13 grids at strides 8, 16, 32) the box centre offset
and log-size in grid units, then objectness and 80 class probabilities
(already sigmoid-activated).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import cv2
import numpy as np

from .. import assets
from ..errors import AssetError, ConfigError
from ..image import to_rgb8
from .base import ClassMaps, VisionBackend, num_threads_from
from .classes import COCO_CLASSES

if TYPE_CHECKING:
    from .sam import SamBoxSegmenter

log = logging.getLogger(__name__)
STRIDES = (8, 16, 32)
_PAD_VALUE = 114


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels


def _threshold(cfg: Mapping[str, Any], key: str, default: float) -> float:
    value = cfg.get(key, default)
    value = default if value is None else value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"vision.{key} must be a number in [0, 1], got {value!r}")
    return float(value)


class YoloxCOCO(VisionBackend):
    vocabulary = "coco"

    def __init__(self, model_path: str | Path, score_threshold: float = 0.35, nms_threshold: float = 0.45,
                 input_size: int = 416, num_threads: int = 2, sam: "SamBoxSegmenter | None" = None):
        # OpenCV's thread pool is process-wide; DNN inference is its main user here.
        cv2.setNumThreads(num_threads)
        self.model_path = Path(model_path)
        try:
            self._net = cv2.dnn.readNetFromONNX(str(self.model_path))
        except cv2.error as exc:
            raise AssetError(f"cannot load ONNX model {self.model_path}: {str(exc).strip().splitlines()[-1]}") from None
        self.score_threshold, self.nms_threshold = score_threshold, nms_threshold
        self.input_size = input_size
        self.sam = sam
        # Anchor-point grid (x, y) and stride per output row, in the export's row order.
        grids, strides = [], []
        for stride in STRIDES:
            n = input_size // stride
            ys, xs = np.mgrid[0:n, 0:n]
            grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
            strides.append(np.full((n * n, 1), stride))
        self._grid = np.concatenate(grids).astype(np.float32)
        self._stride = np.concatenate(strides).astype(np.float32)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "YoloxCOCO":
        """Keys (the ``vision`` section): assets_dir, num_threads, score_threshold, nms_threshold,
        and sam_checkpoint / sam_model_type / device to refine boxes into SAM masks."""
        sam = None
        if cfg.get("sam_checkpoint"):
            from .sam import SamBoxSegmenter

            sam = SamBoxSegmenter.from_config(cfg)
        return cls(assets.resolve("yolox_nano", cfg.get("assets_dir")),
                   _threshold(cfg, "score_threshold", 0.35), _threshold(cfg, "nms_threshold", 0.45),
                   num_threads=num_threads_from(cfg), sam=sam)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Detections above the score threshold after class-wise NMS, best first."""
        return self._detect(to_rgb8(rgb), {})

    def _detect(self, rgb: np.ndarray, timings: dict[str, float]) -> list[Detection]:
        h, w = rgb.shape[:2]
        size = self.input_size
        t = time.perf_counter()
        ratio = min(size / h, size / w)
        nh, nw = max(1, int(h * ratio)), max(1, int(w * ratio))
        canvas = np.full((size, size, 3), _PAD_VALUE, np.uint8)
        canvas[:nh, :nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
        blob = cv2.dnn.blobFromImage(canvas, swapRB=True)  # the model wants BGR
        timings["preprocess"] = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        self._net.setInput(blob)
        out = self._net.forward()[0]
        if out.shape != (len(self._grid), 5 + len(COCO_CLASSES)):
            raise AssetError(f"{self.model_path}: output {out.shape} is not YOLOX COCO at {size}x{size}")
        timings["inference"] = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        detections = self._decode(out, ratio, w, h)
        timings["decode_nms"] = (time.perf_counter() - t) * 1e3
        return detections

    def _decode(self, out: np.ndarray, ratio: float, w: int, h: int) -> list[Detection]:
        class_ids = out[:, 5:].argmax(axis=1)
        scores = out[:, 4] * out[np.arange(len(out)), 5 + class_ids]
        keep = scores >= self.score_threshold
        if not keep.any():
            return []
        out, class_ids, scores = out[keep], class_ids[keep], scores[keep]
        centre = (out[:, :2] + self._grid[keep]) * self._stride[keep]
        half = np.exp(out[:, 2:4]) * self._stride[keep] / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1) / ratio
        boxes = np.clip(boxes, 0, [w, h, w, h])
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        # Batched NMS suppresses overlaps within a class only, so a dog on a bicycle keeps both.
        idx = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(), class_ids.tolist(),
                                      self.score_threshold, self.nms_threshold)
        idx = sorted(np.asarray(idx, int).ravel(), key=lambda i: -scores[i])
        return [Detection(COCO_CLASSES[class_ids[i]], float(scores[i]), tuple(float(v) for v in boxes[i]))
                for i in idx]

    def segment(self, rgb: np.ndarray) -> ClassMaps:
        """Per-class maps: each detection's box (or its SAM mask) filled with its score, max over overlaps."""
        rgb = to_rgb8(rgb)
        h, w = rgb.shape[:2]
        timings: dict[str, float] = {}
        detections = self._detect(rgb, timings)
        regions = self._regions(rgb, detections, timings)
        t = time.perf_counter()
        maps: dict[str, np.ndarray] = {}
        for det, region in zip(detections, regions):
            conf = maps.setdefault(det.label, np.zeros((h, w), np.float32))
            if isinstance(region, np.ndarray):
                np.maximum(conf, np.where(region, np.float32(det.score), np.float32(0)), out=conf)
            else:
                box = conf[region]
                np.maximum(box, np.float32(det.score), out=box)
        maps = {k: v for k, v in maps.items() if v.any()}
        timings["maps"] = (time.perf_counter() - t) * 1e3
        return ClassMaps("coco", (h, w), maps, timings)

    def instances(self, rgb: np.ndarray, timings: dict[str, float] | None = None
                  ) -> list[tuple[Detection, np.ndarray]]:
        """Each detection with its HxW bool region (the box, or its SAM mask), best first."""
        rgb = to_rgb8(rgb)
        timings = {} if timings is None else timings
        detections = self._detect(rgb, timings)
        out = []
        for det, region in zip(detections, self._regions(rgb, detections, timings)):
            if not isinstance(region, np.ndarray):
                mask = np.zeros(rgb.shape[:2], bool)
                mask[region] = True
                region = mask
            out.append((det, region))
        return out

    def _regions(self, rgb: np.ndarray, detections: list[Detection], timings: dict[str, float]) -> list:
        """Per detection: a bool HxW SAM mask, or the box as a pair of slices."""
        if not detections:
            return []
        if self.sam is not None:
            t = time.perf_counter()
            masks, _ = self.sam.segment_boxes(rgb, np.array([d.box for d in detections], np.float32))
            timings["sam"] = (time.perf_counter() - t) * 1e3
            empty = [d.label for d, m in zip(detections, masks) if not m.any()]
            if empty:
                log.debug("SAM returned empty masks for boxes of %s", empty)
            return list(masks)
        regions = []
        for det in detections:
            x1, y1, x2, y2 = det.box
            regions.append((slice(int(np.floor(y1)), int(np.ceil(y2))), slice(int(np.floor(x1)), int(np.ceil(x2)))))
        return regions
