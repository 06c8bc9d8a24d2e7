"""Stream plumbing: audio windows by capture time, stamp anomalies, latest-first slot, stats."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from avs_core.errors import InputError
from avs_core.streaming import ArrivalClock, AudioRing, BlockClock, LatencyStats, LatestSlot, RateMeter

SR = 16000


def _ramp(n: int, start: int = 0) -> np.ndarray:
    """Samples whose value encodes their global index, so windows can be checked exactly."""
    return (np.arange(start, start + n, dtype=np.float32) / 1e6).astype(np.float32)


def _fill(ring: AudioRing, seconds: float, chunk: int = 1600, t0: float = 100.0) -> None:
    for i in range(int(seconds * SR / chunk)):
        assert ring.append(_ramp(chunk, i * chunk), t0 + i * chunk / SR, SR) == []


def test_window_ends_at_requested_time_with_exact_samples():
    ring = AudioRing(capacity_s=5.0)
    _fill(ring, 3.0)
    win = ring.window(t_end=102.0, duration_s=1.0)
    assert win.samples.shape == (SR, 1)
    assert win.coverage == 1.0
    assert win.t_start == pytest.approx(101.0)
    # Sample index k is captured at t0 + k/SR: the window must start at index SR and end at 2*SR-1.
    np.testing.assert_allclose(win.samples[:, 0], _ramp(SR, SR), atol=1e-9)


def test_window_beyond_received_audio_is_zero_filled_with_partial_coverage():
    ring = AudioRing()
    _fill(ring, 1.0)
    win = ring.window(t_end=101.5, duration_s=1.0)
    assert win.coverage == pytest.approx(0.5, abs=1e-3)
    assert np.all(win.samples[SR // 2:] == 0)
    assert np.any(win.samples[: SR // 2] != 0)


def test_no_window_before_first_chunk():
    assert AudioRing().window(1.0, 1.0) is None


def test_stamp_jitter_is_snapped_to_contiguous_samples():
    ring = AudioRing(tolerance_s=0.02)
    ring.append(_ramp(1600, 0), 10.0, SR)
    assert ring.append(_ramp(1600, 1600), 10.1 + 0.005, SR) == []  # 5 ms late stamp
    win = ring.window(10.2, 0.2)
    assert win.coverage == 1.0
    np.testing.assert_allclose(win.samples[:, 0], _ramp(3200, 0), atol=1e-9)


def test_gap_is_reported_and_left_silent():
    ring = AudioRing()
    ring.append(np.ones(1600, np.float32), 10.0, SR)
    events = ring.append(np.ones(1600, np.float32), 10.5, SR)
    assert len(events) == 1 and "gap of 400 ms" in events[0]
    win = ring.window(10.6, 0.6)
    assert win.coverage == pytest.approx(2 * 1600 / (0.6 * SR))
    assert ring.coverage(10.6, 0.6) == pytest.approx(2 * 1600 / (0.6 * SR))  # the copy-free path agrees
    assert ring.coverage(10.5, 0.4) == 0.0 and AudioRing().coverage(10.0, 1.0) == 0.0
    assert np.all(win.samples[int(0.1 * SR):int(0.5 * SR)] == 0)


def test_duplicate_and_out_of_order_chunks_are_dropped():
    ring = AudioRing()
    for i in range(5):
        ring.append(np.full(1600, i, np.float32), 10.0 + i * 0.1, SR)
    dup = ring.append(np.full(1600, 9, np.float32), 10.4, SR)
    old = ring.append(np.full(1600, 9, np.float32), 10.15, SR)
    assert "duplicate" in dup[0] and "out-of-order" in old[0]
    win = ring.window(10.5, 0.5)
    assert not np.any(win.samples == 9)


def test_partial_overlap_is_trimmed():
    ring = AudioRing()
    ring.append(np.zeros(1600, np.float32), 10.0, SR)
    events = ring.append(np.ones(1600, np.float32), 10.05, SR)
    assert "overlap" in events[0]
    win = ring.window(10.15, 0.15)
    np.testing.assert_array_equal(win.samples[:1600, 0], 0)
    np.testing.assert_array_equal(win.samples[1600:, 0], 1)


def test_format_change_resets_buffer():
    ring = AudioRing()
    ring.append(np.ones(1600, np.float32), 10.0, SR)
    events = ring.append(np.ones((800, 2), np.float32), 10.1, 8000)
    assert "buffer reset" in events[0]
    win = ring.window(10.2, 0.2)
    assert win.sample_rate == 8000 and win.samples.shape == (1600, 2)
    assert win.coverage == pytest.approx(0.5)


def test_capacity_bounds_memory():
    ring = AudioRing(capacity_s=1.0)
    _fill(ring, 10.0)
    assert ring.window(110.0, 1.0).coverage == 1.0
    assert ring.window(108.0, 1.0).coverage == 0.0
    assert sum(len(c.samples) for c in ring._chunks) <= 1.2 * SR


@pytest.mark.parametrize(
    "samples, rate",
    [
        (np.array([0.0, np.nan], np.float32), SR),
        (np.array([np.inf] * 4, np.float32), SR),
        (np.zeros(0, np.float32), SR),
        (np.zeros((2, 2, 2), np.float32), SR),
        (np.zeros(16, np.float32), 0),
    ],
)
def test_invalid_chunks_raise_input_error(samples, rate):
    ring = AudioRing()
    with pytest.raises(InputError):
        ring.append(samples, 1.0, rate)
    assert ring.window(1.0, 0.1) is None


def test_int16_audio_is_scaled_by_half_the_code_range():
    ring = AudioRing()
    ring.append(np.repeat(np.array([32767, -32768], np.int16), 80), 0.0, SR)
    samples = ring.window(0.01, 0.01).samples
    assert samples.max() == np.float32(32767 / 32768) and samples.min() == -1.0


def _arrival_stamps(arrivals: list[float], chunk: int = 1600) -> np.ndarray:
    clock = ArrivalClock(horizon_s=1.0)
    return np.array([clock.stamp(chunk, SR, t) for t in arrivals])


def test_arrival_clock_is_not_shifted_by_a_delivery_burst():
    # 0.1 s chunks captured from t=0, normally delivered 5 ms after their last sample; the
    # receiver stalls from 1.0 s to 1.65 s, so chunks 10-15 all arrive at 1.65 s.
    truth = np.arange(60) * 0.1
    arrivals = truth + 0.1 + 0.005
    arrivals[10:16] = np.maximum(arrivals[10:16], 1.65)
    err = _arrival_stamps(list(arrivals)) - truth
    # Every chunk, including those of the burst and all after it, within the 5 ms delivery
    # delay (+1 ms): continuing from the late chunks would shift the rest by up to 0.55 s.
    assert np.abs(err - 0.005).max() < 1e-3, np.round(err, 3)


def test_arrival_clock_follows_a_pause_a_clock_jump_and_drift():
    # The source pauses for 3 s after 2 s of audio: chunks after the pause are stamped by
    # their own arrival, not as a continuation of the audio before it.
    truth = np.concatenate([np.arange(20) * 0.1, 5.0 + np.arange(20) * 0.1])
    err = _arrival_stamps(list(truth + 0.1)) - truth
    assert np.abs(err).max() < 1e-6, np.round(err, 3)
    # A bag loop: the clock goes back from 10 s to 0 s; the stamps go back with it.
    truth = np.concatenate([8.0 + np.arange(20) * 0.1, np.arange(20) * 0.1])
    err = _arrival_stamps(list(truth + 0.1)) - truth
    assert np.abs(err).max() < 1e-6, np.round(err, 3)
    # The receiver's clock runs 0.1 % fast against the sound card for 60 s (0.06 s in all):
    # each stamp stays within horizon x drift of the arrival-implied time.
    truth = np.arange(600) * 0.1
    arrivals = (truth + 0.1) * 1.001
    err = _arrival_stamps(list(arrivals)) - (arrivals - 0.1)
    assert np.abs(err).max() < 2e-3, np.round(err, 4)


def test_latest_slot_drops_stale_items_and_counts_them():
    slot: LatestSlot[int] = LatestSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True
    assert slot.put(3) is True
    assert slot.depth() == 1
    assert slot.get(timeout=0) == 3
    assert slot.get(timeout=0) is None
    assert (slot.accepted, slot.dropped) == (3, 2)


def test_latest_slot_take_if_leaves_items_the_predicate_rejects():
    slot: LatestSlot[int] = LatestSlot()
    assert slot.take_if(lambda item: True) is None
    slot.put(4)
    assert slot.take_if(lambda item: item > 5) is None and slot.depth() == 1
    assert slot.take_if(lambda item: item == 4) == 4 and slot.depth() == 0


def test_latest_slot_wakes_worker_and_close_unblocks():
    slot: LatestSlot[str] = LatestSlot()
    got: list = []
    worker = threading.Thread(target=lambda: got.extend([slot.get(), slot.get()]))
    worker.start()
    slot.put("frame")
    while slot.depth():  # wait until the worker took it
        pass
    slot.close()
    worker.join(timeout=5)
    assert got == ["frame", None]


def test_rate_meter_with_synthetic_clock():
    now = [0.0]
    meter = RateMeter(horizon_s=2.0, clock=lambda: now[0])
    for _ in range(41):
        meter.tick()
        now[0] += 0.05
    now[0] -= 0.05
    assert meter.rate() == pytest.approx(20.0, rel=0.06)
    now[0] += 10.0
    assert meter.rate() == 0.0


def test_latency_percentiles():
    stats = LatencyStats()
    assert stats.summary()["p50_ms"] is None
    for v in range(1, 101):
        stats.add(v / 1000.0)
    s = stats.summary()
    assert s["count"] == 100
    assert s["p50_ms"] == pytest.approx(50.5)
    assert s["p95_ms"] == pytest.approx(95.05)
    assert s["max_ms"] == pytest.approx(100.0)


def test_chunk_pacing_sees_through_lost_chunks_and_bursts():
    from avs_core.streaming import ChunkPacing

    pacing = ChunkPacing()
    t = 0.0
    for i in range(40):
        # 1600-sample chunks every 0.1 s (16 kHz); every 5th chunk lost, every 7th delivered in a burst.
        t += 0.2 if i % 5 == 0 else (0.001 if i % 7 == 0 else 0.1)
        pacing.add(1600, t)
    assert pacing.rate() == pytest.approx(16000, rel=0.01)
    slow = ChunkPacing()
    for i in range(30):
        slow.add(1600, i * 0.2)  # the publisher really runs at 8 kHz
    assert slow.rate() == pytest.approx(8000, rel=0.01)
    assert ChunkPacing().rate() is None


def test_block_clock_maps_adc_times_and_else_falls_back_to_arrivals():
    clock = BlockClock()
    # The first sample was digitised 0.25 s before the callback ran (stream clock 50.0 vs 49.75).
    assert clock.stamp(1000.0, current_time=50.0, adc_time=49.75, frames=1600, sample_rate=16000) == (pytest.approx(999.75), True)
    # No ADC times (many USB and virtual devices): 0.1 s blocks whose callbacks run 0, 30, 0 ms late.
    stamps = [clock.stamp(now, 0.0, 0.0, 1600, 16000) for now in (2000.1, 2000.23, 2000.3)]
    assert [s for s, _ in stamps] == [pytest.approx(2000.0), pytest.approx(2000.1), pytest.approx(2000.2)]
    assert not any(from_adc for _, from_adc in stamps)
