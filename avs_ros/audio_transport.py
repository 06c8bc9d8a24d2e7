"""Audio on ROS topics: decode and encode chunks, validating every message.

Two transports:

* ``audio_common``: ros-drivers ``audio_common_msgs/AudioDataStamped`` (PCM bytes,
  header stamp = capture time of the first sample) plus ``AudioInfo`` (rate,
  channels, sample format S16LE or F32LE, coding ``wave``/``raw``) on ``audio_info``.
  Used when the package is importable.
* ``float32``: ``std_msgs/Float32MultiArray`` (always available). Interleaved float32
  samples in [-1, 1]; ``layout.dim[0]`` = ("samples", frames, frames*channels),
  ``layout.dim[1]`` = ("channels", channels, channels). An empty layout means
  mono. The message has no header, so the sample rate is declared by a parameter
  on both ends and the receiver stamps each chunk as (receive time - chunk
  duration); the node cross-checks the declared rate against the arrival rate.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avs_core.errors import InputError

from .conversions import stamp_seconds

try:
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo
except ImportError:  # not on PyPI; present in apt ROS installs with ros-<distro>-audio-common-msgs
    AudioDataStamped = AudioInfo = None

from std_msgs.msg import Float32MultiArray, MultiArrayDimension

TRANSPORTS = ("auto", "audio_common", "float32")
MIN_RATE, MAX_RATE = 8000, 192000
_PCM_FORMATS = {"S16LE": np.dtype("<i2"), "F32LE": np.dtype("<f4"), "S32LE": np.dtype("<i4")}
_RAW_CODINGS = {"", "wave", "raw", "pcm"}


@dataclass
class AudioChunk:
    samples: np.ndarray  # (frames, channels) float32
    sample_rate: int
    t_first: float  # capture time of the first sample, seconds on the ROS clock
    header_stamped: bool  # False when t_first was derived from the receive time

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def resolve_transport(name: str) -> str:
    if name not in TRANSPORTS:
        raise InputError(f"audio transport must be one of {TRANSPORTS}, got {name!r}")
    if name == "auto":
        return "audio_common" if AudioDataStamped is not None else "float32"
    if name == "audio_common" and AudioDataStamped is None:
        raise InputError("audio transport 'audio_common' requested but audio_common_msgs is not installed "
                         "(apt install ros-$ROS_DISTRO-audio-common-msgs) ; use 'float32' or 'auto'")
    return name


def check_rate(sample_rate: int) -> int:
    if not MIN_RATE <= int(sample_rate) <= MAX_RATE:
        raise InputError(f"sample rate {sample_rate} Hz is outside [{MIN_RATE}, {MAX_RATE}]")
    return int(sample_rate)


def _finite(samples: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(samples)):
        bad = int(samples.size - np.count_nonzero(np.isfinite(samples)))
        raise InputError(f"audio chunk has {bad} NaN/inf samples of {samples.size}")
    return samples


def float32_to_chunk(msg, sample_rate: int, receive_time: float, previous_end: float | None = None,
                     max_lag_s: float = 1.0) -> AudioChunk:
    """Float32MultiArray -> AudioChunk stamped at ``receive_time`` minus its duration.

    Unstamped chunks that arrive in a burst (a busy executor, a network hiccup) would
    look like they overlap; a chunk is never older than the one before it, so one
    that starts within ``max_lag_s`` before ``previous_end`` (end of the last
    chunk) continues it instead.
    """
    data = np.asarray(msg.data, dtype=np.float32)
    dims = list(msg.layout.dim)
    channels = 1
    if dims:
        if len(dims) != 2 or dims[0].label != "samples" or dims[1].label != "channels":
            raise InputError(f"audio layout must be [samples, channels], got {[d.label for d in dims]}")
        frames, channels = int(dims[0].size), int(dims[1].size)
        if channels < 1 or frames * channels != data.size:
            raise InputError(f"audio layout says {frames} samples x {channels} channels but data has {data.size} values")
    if data.size == 0:
        raise InputError("empty audio chunk")
    if data.size % channels:
        raise InputError(f"{data.size} values are not a whole number of {channels}-channel frames")
    samples = _finite(data.reshape(-1, channels))
    sr = check_rate(sample_rate)
    t_first = receive_time - len(samples) / sr
    if previous_end is not None and previous_end - max_lag_s <= t_first < previous_end:
        t_first = previous_end
    return AudioChunk(samples, sr, t_first, header_stamped=False)


def chunk_to_float32(samples: np.ndarray) -> Float32MultiArray:
    frames = np.asarray(samples, dtype=np.float32)
    if frames.ndim == 1:
        frames = frames[:, None]
    n, ch = frames.shape
    msg = Float32MultiArray()
    msg.layout.dim = [MultiArrayDimension(label="samples", size=n, stride=n * ch),
                      MultiArrayDimension(label="channels", size=ch, stride=ch)]
    msg.data = np.ascontiguousarray(frames).ravel()
    return msg


def audio_common_to_chunk(msg, info) -> AudioChunk:
    """AudioDataStamped (+ the latest AudioInfo) -> AudioChunk stamped by its header."""
    if info is None:
        raise InputError("no AudioInfo received yet on audio_info: cannot interpret PCM bytes")
    coding = (info.coding_format or "").lower()
    if coding not in _RAW_CODINGS:
        raise InputError(f"audio coding {info.coding_format!r} is not raw PCM (expected wave/raw)")
    fmt = (info.sample_format or "").upper()
    if fmt not in _PCM_FORMATS:
        raise InputError(f"audio sample format {info.sample_format!r} unsupported; expected one of {sorted(_PCM_FORMATS)}")
    channels = int(info.channels)
    if channels < 1:
        raise InputError(f"AudioInfo says {channels} channels")
    dtype = _PCM_FORMATS[fmt]
    raw = bytes(msg.audio.data)
    frame_bytes = dtype.itemsize * channels
    if not raw or len(raw) % frame_bytes:
        raise InputError(f"audio chunk of {len(raw)} bytes is not a whole number of {fmt} x{channels} frames")
    pcm = np.frombuffer(raw, dtype).reshape(-1, channels)
    samples = pcm.astype(np.float32) / float(np.iinfo(dtype).max) if dtype.kind == "i" else pcm.astype(np.float32)
    stamp = stamp_seconds(msg.header.stamp)
    if stamp == 0:
        raise InputError("AudioDataStamped has a zero header stamp (capture time unknown)")
    return AudioChunk(_finite(samples), check_rate(info.sample_rate), stamp, header_stamped=True)


def chunk_to_audio_common(samples: np.ndarray, header):
    """float32 frames -> AudioDataStamped carrying F32LE PCM (pair with ``audio_info_msg``)."""
    msg = AudioDataStamped()
    msg.header = header
    msg.audio.data = np.ascontiguousarray(samples, dtype="<f4").tobytes()
    return msg


def audio_info_msg(sample_rate: int, channels: int):
    info = AudioInfo()
    info.channels = int(channels)
    info.sample_rate = int(sample_rate)
    info.sample_format = "F32LE"
    info.coding_format = "wave"
    info.bitrate = int(sample_rate * channels * 32)
    return info
