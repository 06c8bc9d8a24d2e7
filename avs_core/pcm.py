"""PCM sample conventions shared by every audio path (files, streams, ROS topics): numpy only.

* :func:`pcm_to_float`: the one int -> float rule. Signed b-bit integers are divided by
  2^(b-1), so they land in [-1, 1) with -2^(b-1) -> -1 exactly and 2^(b-1)-1 -> 1 - 2^(1-b)
  (dividing by the positive maximum instead would push the most negative code past -1).
* :func:`check_sample_rate`: the one sample-rate validator.
"""
from __future__ import annotations

import math
from numbers import Real

import numpy as np

from .errors import InputError

MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000


def check_sample_rate(sample_rate) -> int:
    """The sample rate as an int, or InputError when it is not a whole, plausible rate in Hz."""
    if isinstance(sample_rate, (bool, np.bool_)) or not isinstance(sample_rate, Real):
        raise InputError(f"sample rate must be a number in Hz, got {type(sample_rate).__name__}: {sample_rate!r}")
    rate = float(sample_rate)
    if not math.isfinite(rate) or rate != int(rate):
        raise InputError(f"sample rate must be a whole number of Hz, got {sample_rate!r}")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise InputError(f"sample rate {sample_rate!r} Hz is outside the supported {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")
    return int(rate)


def pcm_to_float(samples) -> np.ndarray:
    """float32 samples from PCM: signed ints / 2^(bits-1), uint8 (8-bit WAV) centred on 128, floats as they are."""
    arr = np.asarray(samples)
    kind, dtype = arr.dtype.kind, arr.dtype
    if kind == "f":
        return arr.astype(np.float32, copy=False)
    if kind == "i" and dtype.itemsize <= 4:
        return arr.astype(np.float32) * np.float32(1.0 / 2 ** (8 * dtype.itemsize - 1))
    if dtype == np.uint8:
        return (arr.astype(np.float32) - np.float32(128.0)) * np.float32(1.0 / 128.0)
    raise InputError(f"unsupported audio dtype {dtype}; use float32/float64 or int8/int16/int32/uint8 PCM")
