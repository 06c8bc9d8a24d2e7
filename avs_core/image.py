"""Image input: read files and normalise any frame layout to HxWx3 uint8 RGB.

Every model in avs_core consumes ``to_rgb8`` output, so layout mistakes
(grayscale, RGBA, 16-bit, float, channels-first) are handled or rejected here
once, with an InputError that says what was wrong.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError

# Larger than 8K (7680x4320) with margin; beyond this a frame is almost surely a
# mis-shaped buffer, and per-class float maps would exhaust memory.
MAX_SIDE = 16384


def to_rgb8(img: object) -> np.ndarray:
    """HxWx3 uint8 RGB (C-contiguous) from a gray, gray+alpha, RGB or RGBA array.

    Accepted dtypes: uint8 (as is), uint16 (full 16-bit range scaled to 8 bits),
    float16/32/64 with values in [0, 1]. Alpha is dropped, gray is replicated.
    Anything else raises InputError.
    """
    if not isinstance(img, np.ndarray):
        raise InputError(f"image must be a numpy array, got {type(img).__name__}")
    if img.ndim == 3 and img.shape[2] not in (1, 2, 3, 4):
        raise InputError(
            f"image of shape {img.shape} has {img.shape[2]} channels; expected channels-last HxWxC with C in 1..4"
        )
    if img.ndim not in (2, 3):
        raise InputError(f"image must be HxW or HxWxC, got {img.ndim} dimensions (shape {img.shape})")
    h, w = img.shape[:2]
    if h == 0 or w == 0:
        raise InputError(f"image is empty (shape {img.shape})")
    if h > MAX_SIDE or w > MAX_SIDE:
        raise InputError(f"image {w}x{h} exceeds the {MAX_SIDE}-pixel side limit")
    rgb8 = _to_uint8(img)
    if rgb8.ndim == 2:
        rgb8 = rgb8[:, :, None]
    channels = rgb8.shape[2]
    if channels in (1, 2):  # gray or gray+alpha
        rgb8 = np.repeat(rgb8[:, :, :1], 3, axis=2)
    elif channels == 4:
        rgb8 = rgb8[:, :, :3]
    return np.ascontiguousarray(rgb8)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        # 65535 -> 255 exactly; rounding keeps mid-grey at 128.
        return ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if img.dtype in (np.float16, np.float32, np.float64):
        if not np.all(np.isfinite(img)):
            raise InputError("float image contains NaN or infinite values")
        lo, hi = float(img.min()), float(img.max())
        if lo < 0.0 or hi > 1.0:
            hint = " (looks like 0-255 data: pass it as uint8)" if hi <= 255.0 and lo >= 0.0 else ""
            raise InputError(f"float image values must lie in [0, 1], got [{lo:g}, {hi:g}]{hint}")
        return np.round(img.astype(np.float32) * 255.0).astype(np.uint8)
    raise InputError(f"unsupported image dtype {img.dtype}; use uint8, uint16 or float in [0, 1]")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to HxWx3 uint8 RGB, or raise InputError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image file not found: {path}")
    # UNCHANGED keeps 16-bit depth and alpha so to_rgb8 converts them deliberately.
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise InputError(f"cannot decode image file {path} (corrupt or unsupported format)")
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    try:
        return to_rgb8(img)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
