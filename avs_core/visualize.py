"""Human-readable renderings of a result: colorized heatmap and overlay (BGR, for cv2/ROS bgr8)."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np


def colorize_heatmap(heatmap: np.ndarray) -> np.ndarray:
    """HxW float in [0,1] -> HxWx3 uint8 BGR (OpenCV's TURBO colormap)."""
    return cv2.applyColorMap((np.clip(heatmap, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_TURBO)


def overlay(rgb: np.ndarray, mask: np.ndarray, heatmap: np.ndarray,
            labels: Sequence[tuple[str, float]] = (), alpha: float = 0.45,
            heard_not_visible: Sequence[str] = ()) -> np.ndarray:
    """Frame with the heatmap blended in, the mask outlined, the sounding labels written and,
    on a second line, the sounds heard whose source is not in view."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    weight = (alpha * np.clip(heatmap, 0, 1))[..., None]
    out = (bgr * (1 - weight) + colorize_heatmap(heatmap) * weight).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    thickness = max(1, min(rgb.shape[:2]) // 240)
    cv2.drawContours(out, contours, -1, (0, 255, 0), thickness)
    lines = [", ".join(f"{name} {score:.2f}" for name, score in labels) or "no sounding object"]
    if heard_not_visible:
        lines.append("heard, not visible: " + ", ".join(heard_not_visible))
    scale = max(0.4, min(rgb.shape[:2]) / 800)
    for i, text in enumerate(lines):
        y = int(24 * scale) * (i + 1) + 4 * (i + 1)
        cv2.putText(out, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
        cv2.putText(out, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out
