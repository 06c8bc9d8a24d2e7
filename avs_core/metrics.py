"""AVSBench metrics: one documented protocol, independent of batching.

Binary (S4 / MS3 / AVS-V3, and synthetic), following AVSBench's reference code
(``utility.mask_iou`` and ``Eval_Fmeasure``):

* IoU of a frame: prediction = probability > 0.5. A frame whose ground truth is
  empty scores the fraction of pixels predicted background (intersection of the
  two backgrounds over all pixels).
* F-score of a frame: 255 thresholds ``torch.linspace(0, 1 - 1e-10, 255)`` in
  float32 (as the reference builds them; the last one rounds to 1.0),
  prediction = float32 probability >= threshold, beta^2 = 0.3, NaN -> 0. Frames
  with an empty ground truth are skipped. The curve comes from a histogram of
  the pixels over the thresholds and cumulative sums (O(H*W) memory), which
  gives the same counts as thresholding 255 times.
* Protocol "video" (the default; AVSBench's test loop, one video per batch):
  mIoU of a video = mean frame IoU; F of a video = max over thresholds of the F
  curve averaged over its non-empty frames, and 0 for a video whose ground
  truth is empty in every frame (``Eval_Fmeasure`` returns its zero score);
  both then averaged over all videos.
* Protocol "video_nonempty": as "video", but videos without any non-empty
  frame are left out of the F average (this package's behaviour before it
  followed the reference; kept for comparison with earlier numbers).
* Protocol "frame": the same frame values pooled over every frame of the set
  (mIoU = mean frame IoU; F = max over thresholds of the curve averaged over all
  non-empty frames).

Results are accumulated frame by frame, so they do not depend on how frames were
batched. Masks are compared at the resolution they are given in (the caller
evaluates at the frame's own resolution).

Semantic (AVSS), following AVSBench's ``_batch_miou_fscore``: for every frame
and class, IoU = |P∩G| / |P∪G| and F = (1+b²)PR/(b²P+R) from pixel areas; both
summed over the frames where the class occurs in prediction or ground truth and
divided by that count. The reported mIoU/F are the means over classes that occur
at least once (the reference averages over all classes with absent ones set to
0; the two agree when every class occurs in the test set).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import InputError

IOU_THRESHOLD = 0.5
F_BETA2 = 0.3
F_NUM_THRESHOLDS = 255
# float32 like the reference (torch's default dtype): the thresholds and the comparisons match it bit for bit.
_F_THRESHOLDS = torch.linspace(0.0, 1.0 - 1e-10, F_NUM_THRESHOLDS, dtype=torch.float32)
PROTOCOLS = ("video", "video_nonempty", "frame")


def _as_tensor(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.dim() != 2:
        raise InputError(f"{name} must be a single HxW map, got shape {tuple(t.shape)}")
    return t.detach().to("cpu")


def _check_pair(prob, gt) -> tuple[torch.Tensor, torch.Tensor]:
    p = _as_tensor(prob, "prediction").float()
    g = _as_tensor(gt, "ground truth") > 0.5
    if p.shape != g.shape:
        raise InputError(f"prediction {tuple(p.shape)} and ground truth {tuple(g.shape)} differ in size; "
                         "evaluate at the frame's resolution")
    if torch.isnan(p).any():
        raise InputError("prediction contains NaN")
    return p, g


def frame_iou(prob, gt, threshold: float = IOU_THRESHOLD) -> float:
    """AVSBench IoU of one frame from a probability map (HxW) and a binary mask."""
    p, g = _check_pair(prob, gt)
    pred = p > threshold
    if not g.any():
        return float((~pred & ~g).sum()) / (g.numel() + 1e-7)
    inter = float((pred & g).sum())
    union = float((pred | g).sum())
    return inter / (union + 1e-7)


def frame_fscore_curve(prob, gt, beta2: float = F_BETA2) -> np.ndarray | None:
    """F-score at each of the 255 thresholds, or None for an empty ground truth (skipped)."""
    p, g = _check_pair(prob, gt)
    if not g.any():
        return None
    # Bin k of a pixel = number of thresholds <= p, so the pixel is predicted at threshold i iff k > i:
    # the predicted (and true-positive) counts per threshold are reversed cumulative sums of the bins.
    bins = torch.searchsorted(_F_THRESHOLDS, p.reshape(-1), right=True)
    n = F_NUM_THRESHOLDS + 1
    predicted = torch.bincount(bins, minlength=n).flip(0).cumsum(0).flip(0)[1:].double()
    tp = torch.bincount(bins[g.reshape(-1)], minlength=n).flip(0).cumsum(0).flip(0)[1:].double()
    precision = tp / (predicted + 1e-20)
    recall = tp / (float(g.sum()) + 1e-20)
    f = (1 + beta2) * precision * recall / (beta2 * precision + recall)
    f[torch.isnan(f)] = 0.0
    return f.numpy()


@dataclass
class _VideoStats:
    ious: list[float] = field(default_factory=list)
    f_curves: list[np.ndarray] = field(default_factory=list)
    areas: list[float] = field(default_factory=list)
    empty_gt_areas: list[float] = field(default_factory=list)


class BinaryMetrics:
    """Accumulates AVSBench mIoU / F-score, predicted area and the silent-scene score."""

    def __init__(self) -> None:
        self._videos: OrderedDict[str, _VideoStats] = OrderedDict()

    def add(self, video_id: str, prob, gt) -> None:
        """One frame: ``prob`` HxW probabilities in [0, 1], ``gt`` HxW binary mask."""
        p, g = _check_pair(prob, gt)
        stats = self._videos.setdefault(str(video_id), _VideoStats())
        stats.ious.append(frame_iou(p, g))
        curve = frame_fscore_curve(p, g)
        if curve is not None:
            stats.f_curves.append(curve)
        area = float((p > IOU_THRESHOLD).double().mean())
        stats.areas.append(area)
        if not g.any():
            stats.empty_gt_areas.append(area)

    def __len__(self) -> int:
        return sum(len(v.ious) for v in self._videos.values())

    def result(self, protocol: str = "video") -> dict[str, float]:
        """mIoU, F, mean predicted area, silent-scene score and counts under ``protocol``."""
        if protocol not in PROTOCOLS:
            raise InputError(f"unknown metric protocol {protocol!r}; use one of {PROTOCOLS}")
        if not self._videos:
            raise InputError("no frames were added to the metrics")
        videos = list(self._videos.values())
        all_ious = [i for v in videos for i in v.ious]
        all_curves = [c for v in videos for c in v.f_curves]
        if protocol in ("video", "video_nonempty"):
            miou = float(np.mean([np.mean(v.ious) for v in videos]))
            # The reference scores a video without a non-empty frame 0; "video_nonempty" leaves it out.
            per_video_f = [float(np.mean(v.f_curves, axis=0).max()) if v.f_curves else 0.0
                           for v in videos if v.f_curves or protocol == "video"]
            fscore = float(np.mean(per_video_f)) if per_video_f else float("nan")
        else:
            miou = float(np.mean(all_ious))
            fscore = float(np.mean(all_curves, axis=0).max()) if all_curves else float("nan")
        empty_areas = [a for v in videos for a in v.empty_gt_areas]
        return {
            "miou": miou,
            "fscore": fscore,
            "area": float(np.mean([a for v in videos for a in v.areas])),
            # Fraction of pixels predicted in frames whose ground truth is empty (0 is ideal).
            "silent_score": float(np.mean(empty_areas)) if empty_areas else float("nan"),
            "videos": len(videos),
            "frames": len(all_ious),
            "empty_gt_frames": len(empty_areas),
        }


class SemanticMetrics:
    """AVSS per-class mIoU / F-score from label maps (class 0 = background)."""

    def __init__(self, num_classes: int, class_names: list[str] | None = None, beta2: float = F_BETA2) -> None:
        if class_names is not None and len(class_names) != num_classes:
            raise InputError(f"{len(class_names)} class names for {num_classes} classes")
        self.num_classes = num_classes
        self.class_names = class_names or [str(i) for i in range(num_classes)]
        self.beta2 = beta2
        self._iou_sum = np.zeros(num_classes)
        self._f_sum = np.zeros(num_classes)
        self._count = np.zeros(num_classes)

    def add(self, pred_labels, gt_labels) -> None:
        p = _as_tensor(pred_labels, "prediction").long().numpy().ravel()
        g = _as_tensor(gt_labels, "ground truth").long().numpy().ravel()
        if p.shape != g.shape:
            raise InputError("prediction and ground truth label maps differ in size")
        if p.min() < 0 or g.min() < 0 or p.max() >= self.num_classes or g.max() >= self.num_classes:
            raise InputError(f"labels must lie in [0, {self.num_classes})")
        n = self.num_classes
        area_pred = np.bincount(p, minlength=n).astype(np.float64)
        area_gt = np.bincount(g, minlength=n).astype(np.float64)
        area_inter = np.bincount(p[p == g], minlength=n).astype(np.float64)
        area_union = area_pred + area_gt - area_inter
        present = area_union > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(present, area_inter / np.where(present, area_union, 1.0), 0.0)
            precision = area_inter / area_pred
            recall = area_inter / area_gt
            f = (1 + self.beta2) * precision * recall / (self.beta2 * precision + recall)
        f[np.isnan(f)] = 0.0
        self._iou_sum += iou
        self._f_sum += f
        self._count += present

    def result(self) -> dict:
        seen = self._count > 0
        if not seen.any():
            raise InputError("no frames were added to the metrics")
        per_iou = np.where(seen, self._iou_sum / np.maximum(self._count, 1), np.nan)
        per_f = np.where(seen, self._f_sum / np.maximum(self._count, 1), np.nan)
        return {
            "miou": float(np.nanmean(per_iou)),
            "fscore": float(np.nanmean(per_f)),
            "per_class": {
                self.class_names[c]: {"miou": float(per_iou[c]), "fscore": float(per_f[c]), "frames": int(self._count[c])}
                for c in range(self.num_classes) if seen[c]
            },
        }


def relative_drop(normal: float, controlled: float) -> float:
    """Δ of TeSO Table 4: relative drop from the normal-audio value (1.0 = dropped to zero)."""
    if not np.isfinite(normal) or normal <= 0:
        return float("nan")
    return float((normal - controlled) / normal)
