"""Audio front-end: validate any buffer, mix to mono, resample, cut windows, gate silence.

Every audio path in avs_core goes through :func:`to_mono_float` first, so bad
buffers (empty, NaN, wrong dtype, odd shapes, absurd sample rates) fail here
with an :class:`~avs_core.errors.InputError` instead of as garbage downstream.
"""
from __future__ import annotations

import math
import os
from numbers import Real

import numpy as np
import torch
import torchaudio.functional as TAF

from ..errors import InputError
from ..pcm import check_sample_rate, pcm_to_float

# Microphone arrays reach 16-32 channels (miniDSP UMA-16, 32-mic rings); a 1 s window has thousands of samples.
MAX_CHANNELS = 64
# Extra input samples taken in front of a window before resampling, so the
# resampling filter has real signal (not an edge) at the window's first sample.
_RESAMPLE_MARGIN_S = 0.01


def _as_array(samples) -> np.ndarray:
    if isinstance(samples, torch.Tensor):
        samples = samples.detach().cpu().numpy()
    try:
        arr = np.asarray(samples)
    except (TypeError, ValueError) as exc:
        raise InputError(f"audio samples are not a numeric array: {exc}") from None
    return arr


def _channels_last(arr: np.ndarray) -> np.ndarray:
    """2-D buffers as (n, ch).

    Rule: (n, ch) when the last axis has at most MAX_CHANNELS entries and is no
    longer than the first (soundfile/sounddevice layout); otherwise (ch, n) when
    the first axis has at most MAX_CHANNELS entries (torchaudio layout).
    """
    rows, cols = arr.shape
    if cols <= MAX_CHANNELS and cols <= rows:
        return arr
    if rows <= MAX_CHANNELS:
        return arr.T
    raise InputError(
        f"audio of shape {arr.shape} has no channel axis of at most {MAX_CHANNELS}; "
        "expected (n,), (n, channels) or (channels, n)"
    )


def _time_major(samples, sample_rate) -> np.ndarray:
    """Validated but unconverted buffer: (n,) or (n, ch). Cheap, so callers can slice before converting."""
    check_sample_rate(sample_rate)
    arr = _as_array(samples)
    if arr.dtype.kind not in "fiu":
        raise InputError(f"audio samples must be numeric PCM, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2):
        raise InputError(f"audio must be 1-D or 2-D, got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"audio buffer is empty (shape {arr.shape})")
    return _channels_last(arr) if arr.ndim == 2 else arr


def _mono(arr: np.ndarray) -> np.ndarray:
    x = pcm_to_float(arr)
    if x.ndim == 2:
        x = x.mean(axis=1, dtype=np.float32)
    if not np.isfinite(x).all():
        raise InputError(f"audio contains {int((~np.isfinite(x)).sum())} NaN/inf samples")
    return np.ascontiguousarray(x, dtype=np.float32)


def to_mono_float(samples, sample_rate) -> np.ndarray:
    """Validate a buffer and return it as mono float32 (n,) in roughly [-1, 1].

    Accepts numpy arrays, torch tensors or sequences of shape (n,), (n, ch) or
    (ch, n) with ch <= MAX_CHANNELS (see :func:`_channels_last` for how the channel axis is
    chosen); dtypes float32/float64/float16 (kept as is) and int8/int16/int32/uint8
    (scaled by full scale). Channels are averaged. Raises InputError for empty,
    non-finite or non-numeric data, other shapes, and implausible sample rates.
    """
    return _mono(_time_major(samples, sample_rate))


def duration_s(samples, sample_rate) -> float:
    """Seconds of audio in a (n,) or (n, ch) / (ch, n) buffer (the layout rules of ``to_mono_float``)."""
    return _time_major(samples, sample_rate).shape[0] / check_sample_rate(sample_rate)


def resample(x, sr_from, sr_to):
    """Band-limited resampling (torchaudio sinc interpolation) along the last axis.

    Returns the same kind of object it was given: numpy in, numpy out; tensor in, tensor out.
    """
    sr_from, sr_to = check_sample_rate(sr_from), check_sample_rate(sr_to)
    is_tensor = isinstance(x, torch.Tensor)
    t = x if is_tensor else torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if sr_from != sr_to:
        t = TAF.resample(t, sr_from, sr_to)
    return t if is_tensor else t.numpy()


class AudioFrontend:
    """Turns any incoming buffer into the model's input: mono float32 at ``sample_rate``.

    ``window`` returns the last ``window_s`` seconds (the audio ending at the
    frame's timestamp), zero-padded at the start when less audio is available.
    """

    def __init__(self, sample_rate: int = 32000, window_s: float = 1.0):
        self.sample_rate = check_sample_rate(sample_rate)
        if not (isinstance(window_s, Real) and math.isfinite(window_s) and window_s > 0):
            raise InputError(f"window_s must be a positive number of seconds, got {window_s!r}")
        self.window_s = float(window_s)
        self.window_samples = int(round(self.window_s * self.sample_rate))

    def prepare(self, samples, sample_rate) -> np.ndarray:
        """Whole buffer as mono float32 at the target rate."""
        return resample(to_mono_float(samples, sample_rate), sample_rate, self.sample_rate)

    def window(self, samples, sample_rate) -> torch.Tensor:
        sr = check_sample_rate(sample_rate)
        arr = _time_major(samples, sr)
        # Convert and resample only the tail we need (plus a margin for the filter): streams can be long.
        need = int(math.ceil((self.window_s + _RESAMPLE_MARGIN_S) * sr))
        tail = torch.from_numpy(_mono(arr[-need:]))
        tail = resample(tail, sr, self.sample_rate)[-self.window_samples:]
        if tail.numel() < self.window_samples:
            tail = torch.nn.functional.pad(tail, (self.window_samples - tail.numel(), 0))
        return tail.contiguous()


def level_dbfs(x) -> float:
    """RMS level in dB relative to full scale (RMS 1.0 = 0 dBFS); -inf for digital silence or empty input."""
    arr = _as_array(x).astype(np.float64, copy=False)
    if arr.size == 0:
        return float("-inf")
    rms = math.sqrt(float(np.mean(np.square(arr))))
    return 20.0 * math.log10(rms) if rms > 0.0 else float("-inf")


def is_silent(x, threshold_dbfs: float = -50.0) -> bool:
    """True when the RMS level is below ``threshold_dbfs`` (the audio gate)."""
    return level_dbfs(x) < threshold_dbfs


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an audio file, or the first audio track of a video, as (samples (n, ch) or (n,), sample_rate).

    WAV/FLAC/OGG go through soundfile (libsndfile); other containers (WebM,
    MP4, MP3, ...) are decoded with PyAV. Raises InputError when unreadable.
    """
    import soundfile as sf

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"audio file not found: {path}")
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        data, sr = _read_with_av(path)
    if data.size == 0:
        raise InputError(f"audio file {path} holds no samples")
    return data, int(sr)


def _read_with_av(path: str) -> tuple[np.ndarray, int]:
    import av

    try:
        with av.open(path) as container:
            if not container.streams.audio:
                raise InputError(f"{path} has no audio track")
            stream = container.streams.audio[0]
            # Planar float keeps each channel separate: frames come out as (ch, n).
            converter = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=stream.rate)
            chunks = []
            for frame in container.decode(stream):
                chunks.extend(f.to_ndarray() for f in converter.resample(frame))
            chunks.extend(f.to_ndarray() for f in converter.resample(None))
            rate = stream.rate
    except av.FFmpegError as exc:
        raise InputError(f"cannot read audio from {path}: {exc}") from None
    if not chunks:
        raise InputError(f"{path} has an audio track without decodable samples")
    data = np.concatenate(chunks, axis=1).T
    return (data[:, 0] if data.shape[1] == 1 else data), int(rate)
