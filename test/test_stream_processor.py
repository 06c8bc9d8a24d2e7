"""StreamProcessor without DDS: the audio wait, latest-first hand-off, worker lifecycle and accounting.

The pipeline is a stand-in that records the windows it gets (the processor's job is
timing, not segmentation); frames are (stamp, HxW) payloads decoded to RGB. No
test asserts on wall-clock durations: waits that must *not* happen are given
``wait_s`` far longer than the test's own timeout.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from avs_core.errors import InputError
from avs_core.stream_processor import StreamProcessor, StreamSettings
from avs_core.types import AVSResult

SR = 16000
NEVER = 1000.0  # a wait_s no test outlives: reaching an output proves the frame did not wait for it


class RecordingPipeline:
    def __init__(self, gate: threading.Event | None = None, fail_first: int = 0):
        self.windows = []
        self.gate = gate
        self.fail_first = fail_first

    def __call__(self, window):
        if self.gate is not None:
            self.gate.wait()
        if self.fail_first > 0:
            self.fail_first -= 1
            raise RuntimeError("model blew up")
        self.windows.append(window)
        h, w = window.frame.shape[:2]
        return AVSResult(np.zeros((h, w), bool), np.zeros((h, w), np.float32), [], {"total": 1.0})


def decode(payload):
    _, shape = payload
    if shape is None:
        raise InputError("undecodable")
    return np.zeros((*shape, 3), np.uint8)


class Harness:
    def __init__(self, settings: StreamSettings, clock=None, **pipeline_kwargs):
        self.outputs = []
        self.warnings = []
        self.pipeline = RecordingPipeline(**pipeline_kwargs)
        self.proc = StreamProcessor(self.pipeline, decode, self.outputs.append, settings,
                                    clock=clock or (lambda: 10.0), warn=lambda kind, msg, level="warning": self.warnings.append(kind))

    def frame(self, stamp: float, shape=(48, 64)) -> bool:
        return self.proc.offer_frame((stamp, shape), stamp)

    def audio(self, t_first: float, t_end: float) -> None:
        """Contiguous 0.1 s chunks covering [t_first, t_end)."""
        for k in range(int(round((t_end - t_first) / 0.1))):
            self.proc.add_audio(np.full(1600, 0.1, np.float32), t_first + k * 0.1, SR)

    def taken(self) -> bool:
        """The worker took the frame out of the slot (it is now waiting or processing)."""
        return wait_for(lambda: self.proc.slot.depth() == 0)

    def stamps(self) -> list[float]:
        return [o.frame.stamp for o in self.outputs]


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return bool(predicate())


@pytest.fixture
def harness():
    made = []

    def make(settings=None, **kwargs):
        h = Harness(settings or StreamSettings(window_s=1.0, wait_s=NEVER, min_coverage=0.9, max_frame_age_s=NEVER), **kwargs)
        h.proc.start()
        made.append(h)
        return h

    yield make
    for h in made:
        if h.pipeline.gate is not None:
            h.pipeline.gate.set()
        assert h.proc.stop(timeout_s=10)


def test_frame_goes_as_soon_as_its_audio_covers_the_window(harness):
    h = harness()
    h.audio(8.0, 9.5)
    assert h.frame(10.0) and h.taken()
    time.sleep(0.05)
    assert h.outputs == [], "half the window's audio is missing: the frame must still wait"
    h.audio(9.5, 10.0)
    assert wait_for(lambda: h.stamps() == [10.0])
    out = h.outputs[0]
    # It goes once min_coverage (0.9) is reached; the last chunks may still be arriving then.
    assert 0.9 <= out.coverage <= 1.0 and out.t_start == pytest.approx(9.0)
    # The window handed to the pipeline is the audio ending at the frame stamp.
    assert h.pipeline.windows[0].audio.shape == (SR, 1) and h.pipeline.windows[0].t_end == 10.0


def test_waiting_frame_is_not_abandoned_for_a_newer_frame_without_audio(harness):
    h = harness()
    h.audio(8.0, 9.5)
    assert h.frame(10.0) and h.taken()
    assert h.frame(10.5)  # arrives while 10.0 waits; its audio is not there either
    h.audio(9.5, 10.0)
    assert wait_for(lambda: h.stamps() == [10.0]), h.stamps()
    h.audio(10.0, 10.5)
    assert wait_for(lambda: h.stamps() == [10.0, 10.5]), h.stamps()
    stats = h.proc.stats()
    assert stats["frames_dropped_superseded"] == 0 and stats["frames_processed"] == 2


def test_the_part_of_a_window_before_the_stream_began_is_not_waited_for(harness):
    h = harness()  # wait_s NEVER: an output proves the frame did not wait
    h.audio(9.7, 10.0)  # the microphone's first chunk starts at 9.7
    assert h.frame(9.5)  # older than the stream's first sample: its audio never comes
    assert wait_for(lambda: h.stamps() == [9.5]), h.stamps()
    assert h.outputs[0].coverage == 0.0
    assert h.frame(10.0)
    assert wait_for(lambda: h.stamps() == [9.5, 10.0]), "the 0.3 s the stream has are all there"
    assert h.outputs[1].coverage == pytest.approx(0.3)  # reported against the whole window
    assert h.frame(10.3) and h.taken()  # [9.7, 10.3]: half of it has arrived, the rest will
    time.sleep(0.05)
    assert h.stamps() == [9.5, 10.0], "audio after the stream began is still waited for"
    h.audio(10.0, 10.3)
    assert wait_for(lambda: h.stamps() == [9.5, 10.0, 10.3]), h.stamps()


def test_newer_frame_with_audio_replaces_a_waiting_one_which_never_comes_back(harness):
    h = harness()
    # A gap at the start of 10.0's window (the stream began earlier): its coverage is 0.45 and stays
    # so; 10.5's window [9.5, 10.5] is 95 % covered, so 10.5 can go at once and 10.0 must be dropped for it.
    h.audio(8.0, 8.5)
    h.audio(9.55, 10.55)
    assert h.frame(10.0) and h.taken()
    time.sleep(0.05)
    assert h.outputs == []
    assert h.frame(10.5)
    assert wait_for(lambda: h.stamps() == [10.5]), h.stamps()
    # More audio, even audio that fills 10.0's window, never brings the older frame back.
    h.audio(10.55, 11.55)
    assert h.frame(11.5)
    assert wait_for(lambda: len(h.outputs) == 2)
    time.sleep(0.1)
    assert h.stamps() == [10.5, 11.5]
    assert h.proc.stats()["frames_dropped_superseded"] == 1


def test_wait_s_bounds_the_wait_and_partial_coverage_is_reported():
    h = Harness(StreamSettings(window_s=1.0, wait_s=0.05, min_coverage=0.9, max_frame_age_s=NEVER))
    h.audio(9.0, 9.5)
    h.frame(10.0)
    frame = h.proc.slot.get(timeout=0)
    out = h.proc.process(frame)
    assert out is not None and out.coverage == pytest.approx(0.5)
    assert np.count_nonzero(h.pipeline.windows[0].audio) == SR // 2


def test_frame_without_any_audio_is_processed_as_silence():
    h = Harness(StreamSettings(wait_s=0.0, max_frame_age_s=NEVER))
    h.frame(10.0)
    out = h.proc.process(h.proc.slot.get(timeout=0))
    assert out.coverage == 0.0 and not np.any(h.pipeline.windows[0].audio)
    assert "no_audio" in h.warnings


def test_stale_frame_is_dropped_and_counted():
    h = Harness(StreamSettings(wait_s=0.0, max_frame_age_s=2.0), clock=lambda: 15.0)
    h.frame(10.0)
    assert h.proc.process(h.proc.slot.get(timeout=0)) is None
    assert h.outputs == [] and h.proc.stats()["frames_dropped_stale"] == 1 and "stale_frame" in h.warnings


@pytest.mark.parametrize("stamps, accepted, kind", [
    ([10.0, 10.0], [True, False], "duplicate_stamp"),
    ([10.0, 9.9], [True, False], "out_of_order_stamp"),
    ([0.0], [False], "zero_stamp"),
])
def test_unusable_stamps_are_rejected(stamps, accepted, kind):
    h = Harness(StreamSettings())
    assert [h.frame(s) for s in stamps] == accepted
    assert kind in h.warnings and h.proc.slot.accepted == sum(accepted)


def test_worker_survives_failures_and_accounts_for_every_frame(harness):
    h = harness(StreamSettings(wait_s=NEVER, min_coverage=0.9, max_frame_age_s=NEVER), fail_first=1)
    h.audio(9.0, 13.5)
    assert h.frame(10.0) and wait_for(lambda: h.proc.stats()["frames_failed"] == 1)
    assert "processing_error" in h.warnings
    assert h.proc.offer_frame((10.5, None), 10.5)  # undecodable
    assert wait_for(lambda: h.proc.stats()["frames_failed"] == 2)
    for k in range(20):
        h.frame(11.0 + k * 0.1, shape=(48 + k, 64))  # size changes frame to frame
    assert wait_for(lambda: h.proc.stats()["queue_depth"] == 0 and not h.proc.busy_s())
    time.sleep(0.05)
    s = h.proc.stats()
    assert s["frames_processed"] >= 1 and h.proc.alive
    assert s["frames_accepted"] == s["frames_processed"] + s["frames_dropped_superseded"] + s["frames_dropped_stale"] \
        + s["frames_failed"] + s["queue_depth"]
    # Every output has the size of its own frame.
    assert all(o.result.mask.shape == o.rgb.shape[:2] == (48 + round((o.frame.stamp - 11.0) * 10), 64) for o in h.outputs)


def test_stop_waits_for_the_worker_and_start_refuses_a_second_worker():
    gate = threading.Event()
    h = Harness(StreamSettings(wait_s=0.0, max_frame_age_s=NEVER), gate=gate)
    h.proc.start()
    h.audio(9.0, 10.0)
    h.frame(10.0)
    assert wait_for(lambda: h.proc.busy_s() > 0)
    assert h.proc.stop(timeout_s=0.2) is False, "the worker is inside the model: stop must report it still runs"
    with pytest.raises(RuntimeError, match="still running"):
        h.proc.start()
    assert h.proc.alive
    gate.set()
    assert h.proc.stop(timeout_s=10) is True and not h.proc.alive
    # Restart: frames flow again.
    h.proc.start()
    h.audio(10.0, 11.0)
    h.frame(11.0)
    assert wait_for(lambda: 11.0 in h.stamps())
    assert h.proc.stop(timeout_s=10)


def test_reset_timeline_accepts_earlier_stamps_and_forgets_old_audio():
    h = Harness(StreamSettings(wait_s=0.0, max_frame_age_s=NEVER))
    h.audio(99.0, 100.0)
    assert h.frame(100.0)
    h.proc.reset_timeline()  # e.g. a bag looped back to t=10
    assert h.proc.slot.depth() == 0 and h.proc.stats()["frames_dropped_stale"] == 1
    assert h.proc.ring.coverage(100.0, 1.0) == 0.0
    assert h.frame(10.0), "a stamp before the old timeline's last one is accepted after the reset"
    h.audio(9.0, 10.0)
    out = h.proc.process(h.proc.slot.get(timeout=0))
    assert out.frame.stamp == 10.0 and out.coverage == 1.0


def test_pipeline_gets_the_audio_before_the_window_as_far_as_the_stream_goes(harness):
    h = harness(StreamSettings(window_s=1.0, audio_span_s=2.5, wait_s=NEVER, min_coverage=1.0, max_frame_age_s=NEVER))
    for k in range(15):  # 0.1 s chunks from t = 8.5, each filled with its own index
        h.proc.add_audio(np.full(1600, k, np.float32), 8.5 + 0.1 * k, SR)
    assert h.frame(9.7) and wait_for(lambda: h.stamps() == [9.7])
    # The stream began 1.2 s before the frame: all of it, no silence padded in front.
    first = h.pipeline.windows[0].audio[:, 0]
    np.testing.assert_array_equal(first, np.repeat(np.arange(12, dtype=np.float32), 1600))
    assert h.outputs[0].coverage == 1.0 and h.outputs[0].t_start == pytest.approx(8.7)  # the 1 s window's
    for k in range(15, 40):
        h.proc.add_audio(np.full(1600, k, np.float32), 8.5 + 0.1 * k, SR)
    assert h.frame(12.0) and wait_for(lambda: h.stamps() == [9.7, 12.0])
    # 2.5 s ending at the frame: chunks 10..34.
    np.testing.assert_array_equal(h.pipeline.windows[1].audio[:, 0], np.repeat(np.arange(10, 35, dtype=np.float32), 1600))
