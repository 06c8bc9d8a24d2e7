"""Keep freed message-sized buffers in the process instead of handing them back to the kernel.

Every camera frame a process sends or receives over DDS passes through several buffers
of the frame's size (the CDR sample, the C message, the Python array), allocated and
freed once per message. glibc serves blocks above its mmap threshold with fresh
``mmap`` calls and returns heap tops above its trim threshold, so each frame pays for
newly zeroed pages: a bare rclpy subscriber of 640x480 rgb8 frames at 30 Hz took 644
page faults and 3.8 ms of CPU per frame (11 % of a core), and 0.02 faults and 2.3 ms
with the thresholds below. On a 2-core robot that CPU is taken from inference.

Both thresholds are set: setting either one turns off glibc's own adjustment of the other.
The user's ``MALLOC_*`` environment settings win, as a user's Fast DDS profile does.
"""
from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (glibc malloc.h)
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's maximum: blocks below it come from the heap (a 1080p rgb8 frame is 6.2 MB)
TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024  # freed memory kept for reuse: a few frames' worth of every buffer on the path
ENV_VARS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def keep_freed_buffers() -> str:
    """Raise glibc's mmap and trim thresholds for this process; returns what was done (for the log)."""
    if any(os.environ.get(var) for var in ENV_VARS) or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return "malloc thresholds from the environment"
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return "malloc thresholds unchanged (no glibc mallopt)"
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES):
        return f"malloc keeps freed buffers (mmap threshold {MMAP_THRESHOLD_BYTES >> 20} MiB, trim {TRIM_THRESHOLD_BYTES >> 20} MiB)"
    return "malloc thresholds unchanged (mallopt refused them)"
