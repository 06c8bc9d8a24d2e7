"""CueRefresher: the frame path (offer/latest) never waits on a slow or failing provider."""
from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from avs_core.cues.refresher import CueRefresher
from avs_core.cues.types import NO_CUES, CueProvider, Cues, pad_cues
from avs_core.errors import ConfigError


class SlowProvider(CueProvider):
    """Sleeps ``delay_s`` per call and reports the mean pixel value it saw as the cue."""

    source = "slow-test"

    def __init__(self, delay_s: float):
        self.delay_s = delay_s
        self.calls = 0
        self.running = threading.Event()

    def compute_batch(self, frames, audios, sample_rate, stamps):
        self.running.set()
        time.sleep(self.delay_s)
        self.calls += 1
        self.running.clear()
        return [Cues((f"value{int(f.mean())}",), self.source, s, 0.0) for f, s in zip(frames, stamps)]


class FailingProvider(CueProvider):
    source = "failing-test"

    def __init__(self):
        self.fail = False

    def compute_batch(self, frames, audios, sample_rate, stamps):
        if self.fail:
            raise RuntimeError("LLM out of memory")
        return [Cues(("guitar",), self.source, s, 0.0) for s in stamps]


def frame(value: int) -> np.ndarray:
    return np.full((8, 8, 3), value, np.uint8)


def wait_until(cond, limit_s: float = 30.0) -> bool:
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_slow_provider_never_blocks_offer_or_latest():
    provider = SlowProvider(delay_s=2.0)
    ref = CueRefresher(provider, period_s=0.05).start()
    try:
        assert ref.latest().texts == () and ref.latest().source == "none"
        assert math.isinf(ref.latest().age_s)
        ref.offer(frame(1), None, None, stamp=1.0)
        assert provider.running.wait(10.0), "provider never started"
        # While the provider sleeps, the frame path keeps offering and reading.
        offered = 0
        while provider.running.is_set() and offered < 100000:
            offered += 1
            ref.offer(frame(7), None, None, stamp=1.0 + offered * 1e-3)
            assert ref.latest().source in ("none", "slow-test")
        # Frame-path calls are O(1): many thousands fit into one 2 s provider call.
        assert offered > 100, offered
        assert wait_until(lambda: ref.latest().texts == ("value1",))
        first = ref.latest()
        assert first.stamp == 1.0 and first.source == "slow-test"
        # The next refresh uses the newest offered frame, not a queue of old ones.
        assert wait_until(lambda: ref.latest().texts == ("value7",))
        assert provider.calls <= 3
        latest = ref.latest()
        assert latest.age_s >= 0.0
        assert ref.latest(now=latest.stamp + 5.0).age_s == pytest.approx(5.0)
    finally:
        ref.stop(timeout_s=5.0)
    assert not ref.running


def test_failures_keep_old_cues_and_are_counted(caplog):
    provider = FailingProvider()
    ref = CueRefresher(provider, period_s=10.0)
    ref.offer(frame(0), None, None, stamp=0.5)
    assert ref.refresh_once()
    assert ref.latest().texts == ("guitar",)
    provider.fail = True
    for i in range(5):
        ref.offer(frame(0), None, None, stamp=1.0 + i)
        assert not ref.refresh_once()
    cues = ref.latest()
    assert cues.texts == ("guitar",) and cues.stamp == 0.5
    assert cues.age_s == pytest.approx(4.5)  # against the newest offered stamp
    st = ref.stats()
    assert st.runs == 1 and st.failures == 5 and "out of memory" in st.last_error
    # Rate-limited: one warning for five failures in a row.
    assert sum("failed, keeping old cues" in r.getMessage() for r in caplog.records) == 1


def test_no_new_input_means_no_rerun():
    provider = SlowProvider(delay_s=0.0)
    ref = CueRefresher(provider, period_s=1.0)
    assert not ref.refresh_once()
    ref.offer(frame(3), None, None, stamp=2.0)
    assert ref.refresh_once() and not ref.refresh_once()
    assert provider.calls == 1


def test_padding_and_bad_period():
    assert pad_cues(["dog"], 3) == ["dog", "None", "None"]
    assert Cues(("a", "b", "c"), "x").padded(2) == ["a", "b"]
    assert NO_CUES.padded(2) == ["None", "None"]
    with pytest.raises(ConfigError):
        CueRefresher(FailingProvider(), period_s=0)
    with pytest.raises(ConfigError):
        pad_cues([], 0)


def test_restart_while_provider_runs_never_overlaps_calls():
    class CountingProvider(CueProvider):
        source = "counting-test"

        def __init__(self):
            self.active = self.max_active = self.calls = 0
            self.lock = threading.Lock()
            self.started = threading.Event()

        def compute_batch(self, frames, audios, sample_rate, stamps):
            with self.lock:
                self.active += 1
                self.max_active = max(self.max_active, self.active)
            self.started.set()
            time.sleep(0.5)
            with self.lock:
                self.active -= 1
                self.calls += 1
            return [Cues(("x",), self.source, s, 0.0) for s in stamps]

    provider = CountingProvider()
    ref = CueRefresher(provider, period_s=0.01).start()
    ref.offer(frame(0), None, None, 1.0)
    assert provider.started.wait(10)
    ref.stop(timeout_s=0.01)  # gives up waiting: the call finishes in the background
    ref.start()
    ref.offer(frame(1), None, None, 2.0)
    try:
        assert wait_until(lambda: provider.calls >= 2 and ref.latest().stamp == 2.0)
    finally:
        ref.stop()
    assert provider.max_active == 1
