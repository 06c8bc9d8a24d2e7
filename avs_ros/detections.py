"""vision_msgs/Detection2DArray from an AVSResult: one detection per sounding object.

An object is a connected region of the published mask. When the model reports
instances (zero-shot), a region takes the class and score of the instance that
covers most of it; otherwise the best sounding label and its score. Boxes are
axis-aligned pixel boxes of the region (center + size, vision_msgs 4.x).
"""
from __future__ import annotations

import importlib

import cv2
import numpy as np


def detection_types():
    """``vision_msgs.msg`` when installed (apt ros-$ROS_DISTRO-vision-msgs), else None."""
    try:
        return importlib.import_module("vision_msgs.msg")
    except ImportError:
        return None


def sounding_regions(result, min_pixels: int = 16) -> list[tuple[tuple[int, int, int, int], str, float]]:
    """[((x0, y0, x1, y1) inclusive-exclusive pixel box, class id, score)] for each connected region of the mask."""
    mask = np.asarray(result.mask, dtype=bool)
    if not mask.any():
        return []
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    fallback = (str(result.labels[0][0]), float(result.labels[0][1])) if result.labels else ("sounding_object", 1.0)
    instances = list(getattr(result, "instances", None) or [])
    out = []
    for k in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[k])
        if area < min_pixels:
            continue
        region = labels == k
        best = max(instances, key=lambda inst: int(np.count_nonzero(inst.mask & region)), default=None)
        if best is not None and np.any(best.mask & region):
            name, score = str(best.label), float(best.score)
        else:
            name, score = fallback
        out.append(((x, y, x + w, y + h), name, score))
    return out


def detections_msg(msgs, header, result):
    """Detection2DArray (``msgs`` = vision_msgs.msg) stamped with ``header`` (the source frame's)."""
    array = msgs.Detection2DArray(header=header)
    for i, ((x0, y0, x1, y1), name, score) in enumerate(sounding_regions(result)):
        det = msgs.Detection2D(header=header, id=str(i))
        det.bbox.center.position.x = (x0 + x1) / 2.0
        det.bbox.center.position.y = (y0 + y1) / 2.0
        det.bbox.size_x, det.bbox.size_y = float(x1 - x0), float(y1 - y0)
        hyp = msgs.ObjectHypothesisWithPose()
        hyp.hypothesis.class_id, hyp.hypothesis.score = name, score
        det.results = [hyp]
        array.detections.append(det)
    return array
