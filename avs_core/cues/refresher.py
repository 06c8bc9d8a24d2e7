"""Refresh scene text cues in a background thread so the frame path never waits on an LLM.

The frame path calls ``offer()`` (stores references to the newest frame/audio, O(1))
and ``latest()`` (returns the newest finished Cues, O(1)). A worker thread wakes every
``period_s``, runs the provider on the newest offered input, and publishes the result.
A slow provider only makes cues older; a failing one is logged (rate-limited) and
the previous cues stay in use. ``latest().age_s`` tells how stale they are.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..throttle import ThrottledWarnings
from .types import NO_CUES, CueProvider, Cues

log = logging.getLogger(__name__)


@dataclass
class RefresherStats:
    runs: int = 0
    failures: int = 0
    last_error: str | None = None
    last_duration_s: float | None = None
    busy: bool = False  # a provider call is in flight


class CueRefresher:
    """Runs ``provider`` on the newest offered input every ``period_s`` seconds.

    Arrays passed to ``offer`` are kept by reference, not copied: the caller must not
    modify them afterwards (ROS message conversions produce fresh arrays, so the node
    satisfies this for free).
    """

    def __init__(self, provider: CueProvider, period_s: float = 2.0, warn_interval_s: float = 10.0):
        if not period_s > 0:
            raise ConfigError(f"cue refresh period must be > 0 s, got {period_s}")
        self.provider = provider
        self.period_s = float(period_s)
        self._lock = threading.Lock()
        self._provider_lock = threading.Lock()  # one provider call at a time, even across restarts
        self._pending: tuple | None = None  # newest offered (frame, audio, sample_rate, stamp)
        self._newest_stamp: float | None = None
        self._cues: Cues = NO_CUES
        self._stats = RefresherStats()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warn = ThrottledWarnings(log, warn_interval_s)

    # ---- frame path (cheap, never blocks on the provider) ----
    def offer(self, frame_rgb: np.ndarray | None, audio: np.ndarray | None, sample_rate: int | None, stamp: float) -> None:
        """Make this input the one the next refresh uses. Never blocks on the provider."""
        with self._lock:
            self._pending = (frame_rgb, audio, sample_rate, float(stamp))
            self._newest_stamp = float(stamp)
            first = self._stats.runs == 0 and self._stats.failures == 0
        if first:
            # No cues yet: compute them now rather than after a full period.
            self._wake.set()

    def latest(self, now: float | None = None) -> Cues:
        """Newest finished cues, with ``age_s`` against ``now`` (default: newest offered stamp)."""
        with self._lock:
            cues, newest = self._cues, self._newest_stamp
        return cues.aged(newest if now is None else now)

    def stats(self) -> RefresherStats:
        with self._lock:
            return RefresherStats(**vars(self._stats))

    # ---- worker ----
    def start(self) -> CueRefresher:
        if self._thread is not None and self._thread.is_alive():
            return self
        # A fresh event per worker: a worker abandoned by stop() exits after its current call.
        self._stop = threading.Event()
        # Daemon: a provider stuck in a long generate() must not keep the process alive on exit.
        self._thread = threading.Thread(target=self._run, args=(self._stop,), name="cue-refresher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the worker to finish; waits at most ``timeout_s`` for a running provider call."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("cue provider %s still running after stop(); it finishes in the background",
                            self.provider.source)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def refresh_once(self) -> bool:
        """Run the provider once on the newest input (in the calling thread).

        Returns True if new cues were published; False if there was no new input or
        the provider failed (old cues are kept).
        """
        with self._provider_lock:
            return self._refresh_locked()

    def _refresh_locked(self) -> bool:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return False
        frame, audio, sample_rate, stamp = pending
        t0 = time.perf_counter()
        with self._lock:
            self._stats.busy = True
        try:
            cues = self.provider(frame, audio, sample_rate, stamp)
        except Exception as exc:  # noqa: BLE001 - any backend failure must leave old cues in place
            with self._lock:
                self._stats.busy = False
                self._stats.failures += 1
                self._stats.last_error = f"{type(exc).__name__}: {exc}"
                self._stats.last_duration_s = time.perf_counter() - t0
            self._warn.warn("cue_provider", f"{self.provider.source} failed, keeping old cues: {type(exc).__name__}: {exc}")
            return False
        with self._lock:
            self._stats.busy = False
            self._cues = cues
            self._stats.runs += 1
            self._stats.last_duration_s = time.perf_counter() - t0
        return True

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            self.refresh_once()
            # Period counts from the start of the last run; a slow provider just runs back to back.
            self._wake.wait(max(0.0, self.period_s - (time.monotonic() - started)))
            self._wake.clear()
