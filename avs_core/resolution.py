"""Inference resolution: models see frames no larger than ``max_side``; outputs come back at the frame's size.

Every model of the package works at a fixed input size no larger than SAM's 1024 px
(YOLOX 640, DeepLab 513), so inferring on a larger frame only costs time and memory
(an 8000x8000 frame: seconds and gigabytes per window) without adding detail the
models can use. Frames beyond ``max_pixels`` are refused outright.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from .errors import InputError
from .types import Instance, SegmenterOutput


def check_frame_size(frame: object, max_pixels: int) -> None:
    """InputError for a frame with more than ``max_pixels`` pixels, before any work is done on it
    (anything that is not an image array is left to :func:`avs_core.image.to_rgb8` to reject)."""
    shape = getattr(frame, "shape", ())
    if len(shape) < 2:
        return
    h, w = int(shape[0]), int(shape[1])
    if h * w > max_pixels:
        raise InputError(f"image of {w}x{h} = {h * w} pixels exceeds pipeline.max_pixels = {max_pixels}; "
                         "downscale it first or raise max_pixels")


def inference_size(h: int, w: int, max_side: int) -> tuple[int, int]:
    """(h, w) scaled so the longest side is at most ``max_side`` (aspect kept, never upscaled)."""
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return h, w
    return max(1, int(round(h * scale))), max(1, int(round(w * scale)))


def downscale(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``rgb`` resized to ``size`` (h, w) by pixel-area averaging (no aliasing), or itself when already that size."""
    if rgb.shape[:2] == size:
        return rgb
    return cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def _up_prob(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(np.ascontiguousarray(x, np.float32), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def _up_mask(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(x.astype(np.uint8), (size[1], size[0]), interpolation=cv2.INTER_NEAREST).astype(bool)


def upscale_output(out: SegmenterOutput, size: tuple[int, int]) -> SegmenterOutput:
    """A segmenter output computed on a downscaled frame, brought back to the frame's ``size`` (h, w)."""
    h0, w0 = out.heatmap.shape[:2]
    if (h0, w0) == size:
        return out
    sy, sx = size[0] / h0, size[1] / w0

    def instance(inst: Instance) -> Instance:
        box = None if inst.box is None else (inst.box[0] * sx, inst.box[1] * sy, inst.box[2] * sx, inst.box[3] * sy)
        return dataclasses.replace(inst, mask=_up_mask(inst.mask, size), prob=_up_prob(inst.prob, size), box=box)

    return dataclasses.replace(out, heatmap=_up_prob(out.heatmap, size), instances=[instance(i) for i in out.instances])
