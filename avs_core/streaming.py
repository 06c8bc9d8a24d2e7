"""Real-time stream plumbing, ROS-free: audio ring buffer, latest-frame slot, rate/latency stats.

The ROS node (avs_ros) feeds these from its callbacks; keeping them here makes the
timing logic testable without DDS and reusable by any other front end.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from .errors import InputError
from .pcm import check_sample_rate, pcm_to_float

T = TypeVar("T")


@dataclass
class AudioWindow:
    """Audio ending at ``t_end``; samples the ring never received are zeros."""

    samples: np.ndarray  # (n, channels) float32
    sample_rate: int
    t_start: float
    t_end: float
    coverage: float  # fraction of the window backed by received samples, 0..1


@dataclass
class _Chunk:
    t_first: float
    samples: np.ndarray  # (n, channels) float32

    def t_end(self, sample_rate: int) -> float:
        return self.t_first + len(self.samples) / sample_rate


class AudioRing:
    """Audio chunks with the capture time of their first sample.

    Consecutive chunks whose stamps jitter by less than ``tolerance_s`` are snapped
    together so timestamp noise does not turn into clicks or tiny gaps. Larger
    jumps are reported (gap, overlap, duplicate, out-of-order) through the list of
    event strings ``append`` returns, so the caller can log them its own way.
    """

    def __init__(self, capacity_s: float = 5.0, tolerance_s: float = 0.02):
        if capacity_s <= 0:
            raise InputError(f"audio ring capacity must be > 0 s, got {capacity_s}")
        self.capacity_s = float(capacity_s)
        self.tolerance_s = float(tolerance_s)
        self.sample_rate: int | None = None
        self.channels: int | None = None
        self._chunks: deque[_Chunk] = deque()
        self._lock = threading.Lock()

    @property
    def latest_time(self) -> float | None:
        """Capture time just after the newest sample, or None when empty."""
        with self._lock:
            return self._chunks[-1].t_end(self.sample_rate) if self._chunks else None

    @property
    def earliest_time(self) -> float | None:
        """Capture time of the oldest sample still held, or None when empty."""
        with self._lock:
            return self._chunks[0].t_first if self._chunks else None

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()

    def append(self, samples: np.ndarray, t_first: float, sample_rate: int) -> list[str]:
        """Store a chunk; returns human-readable events about its timing (empty when clean).

        Raises InputError for chunks that cannot be audio at all (non-finite samples,
        bad shape, bad rate); the caller logs and drops those.
        """
        data = _as_frames(samples)
        sample_rate = check_sample_rate(sample_rate)
        if not np.isfinite(t_first):
            raise InputError(f"chunk stamp is not finite: {t_first}")
        if not np.all(np.isfinite(data)):
            bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
            raise InputError(f"audio chunk has {bad} NaN/inf samples of {data.size}")
        events: list[str] = []
        with self._lock:
            if self.sample_rate is not None and (sample_rate != self.sample_rate or data.shape[1] != self.channels):
                events.append(
                    f"audio format changed from {self.sample_rate} Hz x{self.channels} to "
                    f"{sample_rate} Hz x{data.shape[1]}: buffer reset"
                )
                self._chunks.clear()
            self.sample_rate, self.channels = int(sample_rate), int(data.shape[1])
            sr = self.sample_rate
            if self._chunks:
                expected = self._chunks[-1].t_end(sr)
                delta = t_first - expected
                if abs(delta) <= self.tolerance_s:
                    t_first = expected
                elif delta > 0:
                    events.append(f"audio gap of {delta * 1e3:.0f} ms before chunk at t={t_first:.3f}")
                else:
                    chunk_end = t_first + len(data) / sr
                    if chunk_end <= expected + self.tolerance_s:
                        kind = "duplicate" if any(abs(c.t_first - t_first) <= self.tolerance_s for c in self._chunks) else "out-of-order"
                        events.append(f"{kind} audio chunk at t={t_first:.3f} (buffer already reaches t={expected:.3f}): dropped")
                        return events
                    # Partial overlap: keep only the part after what we already have.
                    skip = int(round((expected - t_first) * sr))
                    events.append(f"audio chunk overlaps the previous one by {skip / sr * 1e3:.0f} ms: overlap trimmed")
                    data, t_first = data[skip:], expected
            if len(data):
                self._chunks.append(_Chunk(float(t_first), data))
            newest = self._chunks[-1].t_end(sr) if self._chunks else t_first
            while self._chunks and self._chunks[0].t_end(sr) < newest - self.capacity_s:
                self._chunks.popleft()
        return events

    def window(self, t_end: float, duration_s: float) -> AudioWindow | None:
        """Audio in [t_end - duration_s, t_end], zero-filled where nothing was received.

        None until the first chunk has arrived (the sample rate is unknown before).
        """
        if duration_s <= 0:
            raise InputError(f"window duration must be > 0 s, got {duration_s}")
        with self._lock:
            if self.sample_rate is None:
                return None
            sr, ch = self.sample_rate, self.channels
            n = max(1, int(round(duration_s * sr)))
            t_start = t_end - n / sr
            out = np.zeros((n, ch), dtype=np.float32)
            filled = 0
            for chunk, offset, lo, hi in self._overlaps(t_start, n):
                out[lo:hi] = chunk.samples[lo - offset:hi - offset]
                filled += hi - lo
        return AudioWindow(out, sr, t_start, t_end, min(1.0, filled / n))

    def coverage(self, t_end: float, duration_s: float) -> float:
        """``window(t_end, duration_s).coverage`` without copying samples (0 before the first chunk)."""
        if duration_s <= 0:
            raise InputError(f"window duration must be > 0 s, got {duration_s}")
        with self._lock:
            if self.sample_rate is None:
                return 0.0
            n = max(1, int(round(duration_s * self.sample_rate)))
            filled = sum(hi - lo for _, _, lo, hi in self._overlaps(t_end - n / self.sample_rate, n))
        return min(1.0, filled / n)

    def _overlaps(self, t_start: float, n: int):
        """(chunk, offset of its first sample in the window, lo, hi) for chunks overlapping the n-sample window."""
        sr = self.sample_rate
        for chunk in self._chunks:
            offset = int(round((chunk.t_first - t_start) * sr))
            lo, hi = max(0, offset), min(n, offset + len(chunk.samples))
            if hi > lo:
                yield chunk, offset, lo, hi


def _as_frames(samples: np.ndarray) -> np.ndarray:
    data = np.asarray(samples)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[1] < 1:
        raise InputError(f"audio chunk must have shape (n,) or (n, channels), got {np.shape(samples)}")
    if data.shape[0] == 0:
        raise InputError("audio chunk is empty")
    return np.ascontiguousarray(pcm_to_float(data), dtype=np.float32)


class LatestSlot(Generic[T]):
    """Capacity-1 hand-off between a producer callback and a worker thread.

    ``put`` never blocks: a newer item replaces an unconsumed older one (which is
    counted as dropped), so the worker always processes the freshest input and
    latency cannot build up in a queue.
    """

    def __init__(self) -> None:
        self._item: T | None = None
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0
        self.accepted = 0

    def put(self, item: T) -> bool:
        """Store ``item``; True when it replaced (dropped) an older unprocessed one."""
        with self._cond:
            replaced = self._item is not None
            self.dropped += replaced
            self.accepted += 1
            self._item = item
            self._cond.notify()
        return replaced

    def get(self, timeout: float | None = None) -> T | None:
        """Take the latest item, waiting up to ``timeout``; None on timeout or close."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._item is not None or self._closed, timeout):
                return None
            item, self._item = self._item, None
            return item

    def take_if(self, predicate) -> T | None:
        """Take the waiting item only if ``predicate(item)`` holds (no wait); else leave it and return None."""
        with self._cond:
            if self._item is None or not predicate(self._item):
                return None
            item, self._item = self._item, None
            return item

    def depth(self) -> int:
        with self._cond:
            return int(self._item is not None)

    def reopen(self) -> None:
        """Let ``get`` wait again after ``close`` (a restarted worker)."""
        with self._cond:
            self._closed = False

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class RateMeter:
    """Events per second over a sliding time window."""

    def __init__(self, horizon_s: float = 5.0, clock=time.monotonic):
        self.horizon_s = horizon_s
        self._clock = clock
        self._times: deque[tuple[float, float]] = deque()
        self._lock = threading.Lock()

    def tick(self, amount: float = 1.0) -> None:
        now = self._clock()
        with self._lock:
            self._times.append((now, amount))
            self._trim(now)

    def rate(self) -> float:
        """Average rate over the horizon (amount per second); 0 with fewer than 2 events."""
        now = self._clock()
        with self._lock:
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            span = now - self._times[0][0]
            # The first event opens the interval; its amount is not "in" it.
            return sum(a for _, a in list(self._times)[1:]) / span if span > 0 else 0.0

    def _trim(self, now: float) -> None:
        while self._times and self._times[0][0] < now - self.horizon_s:
            self._times.popleft()


class ArrivalClock:
    """Capture times for audio that carries none, from when its chunks arrive.

    Delivery only ever delays a chunk, never advances it, and the samples themselves are
    contiguous. So each chunk implies a stream origin ``arrival - samples_so_far / rate``
    that is late by that chunk's delay, and the smallest origin over the last
    ``horizon_s`` of arrivals is the best estimate. A burst (a busy executor, a network
    hiccup) delays some chunks but its last one arrives on time, so it never shifts the
    timeline; continuing each chunk from the previous one instead would keep any delay
    forever. A real pause of the source, or clock drift, shows as every chunk arriving
    late and is followed within ``horizon_s``; the clock going backwards (a bag loop)
    restarts the estimate.
    """

    def __init__(self, horizon_s: float = 1.0):
        if horizon_s <= 0:
            raise InputError(f"arrival clock horizon must be > 0 s, got {horizon_s}")
        self.horizon_s = float(horizon_s)
        self.reset()

    def reset(self) -> None:
        self._sample_rate: int | None = None
        self._samples = 0  # samples before the next chunk, counted from the origin
        self._origins: deque[tuple[float, float]] = deque()  # (arrival, implied origin)

    def stamp(self, n_samples: int, sample_rate: int, arrival: float) -> float:
        """Capture time of the first sample of an ``n_samples`` chunk that arrived at ``arrival``."""
        if sample_rate != self._sample_rate or (self._origins and arrival < self._origins[-1][0]):
            self.reset()
            self._sample_rate = sample_rate
        end = self._samples + n_samples
        self._origins.append((arrival, arrival - end / sample_rate))
        while self._origins[0][0] < arrival - self.horizon_s:
            self._origins.popleft()
        t_first = min(origin for _, origin in self._origins) + self._samples / sample_rate
        self._samples = end
        return t_first


class BlockClock:
    """Capture time of the first sample of each microphone block (PortAudio input callbacks).

    From the device's ADC time when it reports one (``inputBufferAdcTime`` on the stream
    clock ``currentTime``, mapped onto the caller's clock), else from the blocks' arrival
    times through an ArrivalClock: the callback runs late by a varying amount.
    """

    def __init__(self, horizon_s: float = 1.0):
        self.arrivals = ArrivalClock(horizon_s)

    def reset(self) -> None:
        """A new stream (device reopened): forget the arrival history."""
        self.arrivals.reset()

    def stamp(self, now: float, current_time: float, adc_time: float, frames: int,
              sample_rate: int) -> tuple[float, bool]:
        """(capture time of the block's first sample on the ``now`` clock, whether it came from the ADC time)."""
        if adc_time > 0 and current_time > 0 and 0 <= current_time - adc_time < 10.0:
            return now - (current_time - adc_time), True
        return self.arrivals.stamp(frames, sample_rate, now), False


class ChunkPacing:
    """Sample rate implied by how fast chunks arrive: median over recent chunks of n_samples / inter-arrival time.

    The median ignores the odd lost chunk (one doubled interval) and delivery bursts
    (one long and one short interval), so a persistent mismatch with the declared
    rate means the declared rate is wrong, not that the network hiccuped.
    """

    def __init__(self, maxlen: int = 50, clock=time.monotonic):
        self._clock = clock
        self._last: float | None = None
        self._rates: deque[float] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def add(self, n_samples: int, t: float | None = None) -> None:
        """One chunk of ``n_samples`` that arrived (or was sent) at time ``t`` (default: now)."""
        now = self._clock() if t is None else t
        with self._lock:
            if self._last is not None and now > self._last:
                self._rates.append(n_samples / (now - self._last))
            self._last = now

    def rate(self, min_chunks: int = 20) -> float | None:
        """Median samples/s per channel, or None with fewer than ``min_chunks`` intervals."""
        with self._lock:
            if len(self._rates) < min_chunks:
                return None
            return float(np.median(self._rates))


class LatencyStats:
    """Recent latency samples (seconds) and their percentiles, reported in milliseconds."""

    def __init__(self, maxlen: int = 1000):
        self._values: deque[float] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, seconds: float) -> None:
        with self._lock:
            self._values.append(float(seconds))
            self.count += 1

    def summary(self) -> dict[str, Any]:
        with self._lock:
            values = np.asarray(self._values, dtype=np.float64) * 1e3
        if values.size == 0:
            return {"count": self.count, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        return {
            "count": self.count,
            "p50_ms": round(float(p50), 2),
            "p95_ms": round(float(p95), 2),
            "p99_ms": round(float(p99), 2),
            "max_ms": round(float(values.max()), 2),
        }
