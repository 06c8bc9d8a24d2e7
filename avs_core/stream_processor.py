"""StreamProcessor: live frames + audio chunks in, one pipeline result per processed frame out. ROS-free.

Any front end (the ROS node, ``avs segment`` on a camera) feeds it from its own
threads and gets results through a callback:

    proc = StreamProcessor(pipeline, decode=to_rgb, on_output=publish, clock=ros_now)
    proc.start()
    proc.add_audio(samples, t_first, sample_rate)   # audio thread/callback
    proc.offer_frame(msg, stamp)                     # camera thread/callback
    ...
    proc.stop()

Frames go through a capacity-1 slot, so a slow model drops frames instead of
queueing them; one worker thread decodes, waits for the frame's audio, runs the
pipeline and calls ``on_output``. The audio wait never starves the worker: a frame
is processed as soon as its window's audio coverage reaches ``min_coverage``, or
once ``wait_s`` has passed since it arrived; a newer frame replaces the waiting
one only if the newer frame's audio is already there (so a frame whose audio is
ready is never abandoned, and outputs never go back in time).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .errors import InputError
from .streaming import AudioRing, LatencyStats, LatestSlot, RateMeter
from .types import AVSResult, Window

log = logging.getLogger(__name__)

WarnFn = Callable[..., Any]  # warn(kind, message, level="warning")


@dataclass
class StreamSettings:
    """Timing knobs; the front end may change them while running (plain attribute writes)."""

    window_s: float = 1.0
    # Audio handed to the pipeline, ending at the frame (AVSPipeline.audio_span_s: the window, or the
    # tagger's longer context); at most the ring's capacity. Coverage and waiting concern the window only.
    audio_span_s: float = 0.0
    wait_s: float = 0.1  # longest a frame waits for its audio, counted from its arrival
    min_coverage: float = 0.9  # window coverage at which a frame goes without waiting
    max_rate_hz: float = 0.0  # 0: as fast as inference allows
    max_frame_age_s: float = 2.0


@dataclass
class Frame:
    payload: Any  # whatever ``decode`` turns into RGB (a ROS message, a numpy frame, ...)
    stamp: float  # capture time on the processor's clock (end of the audio window)
    arrived: float  # time.monotonic() when offered


@dataclass
class StreamOutput:
    frame: Frame
    rgb: np.ndarray
    result: AVSResult
    t_start: float
    coverage: float
    cues: Any  # avs_core.cues.types.Cues or None


def _log_warn(kind: str, message: str, level: str = "warning") -> None:
    getattr(log, level)(f"[{kind}] {message}")


class StreamProcessor:
    def __init__(self, pipeline, decode: Callable[[Any], np.ndarray], on_output: Callable[[StreamOutput], None],
                 settings: StreamSettings | None = None, clock: Callable[[], float] = time.time,
                 warn: WarnFn = _log_warn, refresher=None, buffer_s: float = 5.0, name: str = "avs-worker"):
        self.pipeline = pipeline
        self.decode = decode
        self.on_output = on_output
        self.settings = settings or StreamSettings()
        self.clock = clock
        self.warn = warn
        self.refresher = refresher
        self.name = name
        self.ring = AudioRing(capacity_s=buffer_s)
        self.slot: LatestSlot[Frame] = LatestSlot()
        self.frame_rate, self.audio_rate, self.sample_rate_meter = RateMeter(), RateMeter(), RateMeter()
        self.processed_rate = RateMeter()
        self.latency, self.inference = LatencyStats(), LatencyStats()
        self.processed = self.stale = self.abandoned = self.errors = 0
        self.last_coverage: float | None = None
        self._last_stamp: float | None = None
        self._busy_since: float | None = None  # monotonic start of the frame in work
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Wakes a worker waiting for audio when audio or a newer frame arrives; the
        # generation counter closes the race between checking and waiting.
        self._news = threading.Condition()
        self._generation = 0

    # ------------------------------------------------------------------ inputs (any thread)
    def offer_frame(self, payload: Any, stamp: float) -> bool:
        """Hand a frame to the worker; False (with a counted warning) for stamps it cannot use."""
        self.frame_rate.tick()
        if stamp == 0.0:
            self.warn("zero_stamp", "image with a zero header stamp: cannot align it with audio, dropped")
            return False
        last = self._last_stamp
        if last is not None and stamp <= last:
            kind = "duplicate_stamp" if stamp == last else "out_of_order_stamp"
            self.warn(kind, f"image stamp {stamp:.3f} is not after the previous {last:.3f}: dropped")
            return False
        self._last_stamp = stamp
        self.slot.put(Frame(payload, float(stamp), time.monotonic()))
        self._notify()
        return True

    def add_audio(self, samples: np.ndarray, t_first: float, sample_rate: int) -> list[str]:
        """Store a chunk whose first sample was captured at ``t_first``; returns timing events.

        Raises InputError for chunks that are not audio (see AudioRing.append).
        """
        events = self.ring.append(samples, t_first, sample_rate)
        self.audio_rate.tick()
        self.sample_rate_meter.tick(len(samples))
        self._notify()
        return events

    def reset_timeline(self) -> None:
        """Stream time went back (bag loop, simulator reset): forget the audio, the stamp guard and a waiting frame."""
        self.ring.clear()
        self._last_stamp = None
        if self.slot.get(timeout=0) is not None:
            self.stale += 1  # from the old timeline: never processed, still accounted for
        self._notify()

    def _notify(self) -> None:
        with self._news:
            self._generation += 1
            self._news.notify_all()

    # ------------------------------------------------------------------ worker control
    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the worker; RuntimeError while a previous worker is still finishing a frame."""
        if self.alive:
            raise RuntimeError(f"{self.name}: the previous worker is still running (stuck in a frame?); not starting a second one")
        self._stop = threading.Event()
        self.slot.reopen()
        self._thread = threading.Thread(target=self._work, args=(self._stop,), name=self.name, daemon=True)
        self._thread.start()
        if self.refresher is not None:
            self.refresher.start()

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop the worker and wait for it; False if it is still busy after ``timeout_s``."""
        self._stop.set()
        self.slot.close()
        self._notify()
        if self.refresher is not None:
            self.refresher.stop()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                return False
            self._thread = None
        return True

    def busy_s(self) -> float:
        """Seconds the worker has spent on its current frame (0 when idle)."""
        since = self._busy_since
        return time.monotonic() - since if since is not None else 0.0

    # ------------------------------------------------------------------ worker
    def _work(self, stop: threading.Event) -> None:
        next_start = 0.0
        while not stop.is_set():
            frame = self.slot.get(timeout=0.2)
            if frame is None:
                continue
            max_rate = self.settings.max_rate_hz
            if max_rate > 0 and time.monotonic() < next_start:
                # Rate cap: wait, but let a newer frame replace this one meanwhile.
                stop.wait(next_start - time.monotonic())
                frame = self.slot.get(timeout=0) or frame
            next_start = time.monotonic() + (1.0 / max_rate if max_rate > 0 else 0.0)
            self._busy_since = time.monotonic()
            try:
                self.process(frame, stop)
            except Exception as exc:  # noqa: BLE001 - the worker must survive any model/input failure
                if stop.is_set():
                    return  # shutting down mid-frame: the output side may already be gone
                self.errors += 1
                self.warn("processing_error", f"frame skipped: {type(exc).__name__}: {exc}", level="error")
            finally:
                self._busy_since = None

    def process(self, frame: Frame, stop: threading.Event | None = None) -> StreamOutput | None:
        """Run one frame through wait → decode → window → pipeline → ``on_output`` (the worker's body)."""
        age = self.clock() - frame.stamp
        if age > self.settings.max_frame_age_s:
            self.stale += 1
            self.warn("stale_frame", f"frame {frame.stamp:.3f} is {age:.2f} s old (> max_frame_age_s): dropped")
            return None
        frame = self._wait_for_audio(frame, stop or threading.Event())
        try:
            rgb = self.decode(frame.payload)
        except InputError as exc:
            self.errors += 1
            self.warn("bad_image", f"image rejected: {exc}")
            return None
        window_s = float(self.settings.window_s)
        win = self.ring.window(frame.stamp, window_s)
        if win is None or win.coverage == 0.0:
            self.warn("no_audio", f"no audio covers the window ending at {frame.stamp:.3f}: processing it as silence")
            sr = win.sample_rate if win is not None else 16000
            samples, t_start, coverage = np.zeros(int(window_s * sr), np.float32), frame.stamp - window_s, 0.0
        else:
            sr, samples, t_start, coverage = win.sample_rate, win.samples, win.t_start, win.coverage
            samples = self._with_context(samples, frame.stamp, window_s)
        cues = None
        if self.refresher is not None:
            self.refresher.offer(rgb, samples, sr, frame.stamp)
            cues = self.refresher.latest(now=frame.stamp)
        result = self.pipeline(Window(frame=rgb, audio=samples, sample_rate=sr, t_start=t_start, t_end=frame.stamp,
                                      # No cues yet is an empty list: text-cued models (TeSO) pad it.
                                      cues=list(cues.texts) if cues is not None else []))
        out = StreamOutput(frame, rgb, result, t_start, coverage, cues)
        self.on_output(out)
        self.processed += 1
        self.processed_rate.tick()
        self.last_coverage = coverage
        self.inference.add(result.timings_ms.get("total", 0.0) / 1e3)
        self.latency.add(self.clock() - frame.stamp)
        return out

    def _with_context(self, window: np.ndarray, t_end: float, window_s: float) -> np.ndarray:
        """The window with the received audio before it, up to ``audio_span_s`` in all (the stream's
        start is not padded with silence: it would dilute the tagger's evidence)."""
        span = min(float(self.settings.audio_span_s), self.ring.capacity_s, self._stream_s(t_end) or 0.0)
        if span <= window_s:
            return window
        return self.ring.window(t_end, span).samples

    def _audio_ready(self, frame: Frame) -> bool:
        """Audio covers ``min_coverage`` of the frame's window, counted from the stream's first sample
        when the window reaches back before it: that part never arrives, so it is not waited for."""
        stream_s = self._stream_s(frame.stamp)
        if stream_s is None:
            return False
        span = min(float(self.settings.window_s), stream_s)
        return span <= 0 or self.ring.coverage(frame.stamp, span) >= self.settings.min_coverage

    def _stream_s(self, t_end: float) -> float | None:
        """Seconds of the audio stream before ``t_end``, from the first sample held; None before any audio."""
        earliest = self.ring.earliest_time
        return t_end - earliest if earliest is not None else None

    def _wait_for_audio(self, frame: Frame, stop: threading.Event) -> Frame:
        """The frame to process: ``frame`` once its audio is ready or its wait is over, or a newer one whose audio is ready."""
        while not stop.is_set():
            with self._news:
                generation = self._generation
            if self._audio_ready(frame):
                return frame
            newer = self.slot.take_if(self._audio_ready)
            if newer is not None:
                self.abandoned += 1  # superseded while waiting, by a frame that can go right away
                return newer
            remaining = frame.arrived + self.settings.wait_s - time.monotonic()
            if remaining <= 0:
                return frame
            with self._news:
                if self._generation == generation:
                    self._news.wait(remaining)
        return frame

    # ------------------------------------------------------------------ stats
    def stats(self) -> dict[str, Any]:
        """Counters and rates for diagnostics (names match the node's /diagnostics keys)."""
        lat, inf = self.latency.summary(), self.inference.summary()
        return {
            "image_rate_hz": round(self.frame_rate.rate(), 2),
            "audio_chunk_rate_hz": round(self.audio_rate.rate(), 2),
            "audio_samples_per_s": round(self.sample_rate_meter.rate()),
            "processed_rate_hz": round(self.processed_rate.rate(), 2),
            "frames_accepted": self.slot.accepted,
            "frames_processed": self.processed,
            # Replaced in the slot before the worker took them, or while waiting for audio.
            "frames_dropped_superseded": self.slot.dropped + self.abandoned,
            "frames_dropped_stale": self.stale,
            "frames_failed": self.errors,  # undecodable or the pipeline raised
            "queue_depth": self.slot.depth(),
            "latency_p50_ms": lat["p50_ms"],
            "latency_p95_ms": lat["p95_ms"],
            "latency_p99_ms": lat["p99_ms"],
            "inference_p50_ms": inf["p50_ms"],
            "audio_coverage": self.last_coverage,
            "worker_busy_s": round(self.busy_s(), 2),
        }
