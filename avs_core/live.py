"""``avs segment --live``: a camera, stream or file segmented as it plays, through StreamProcessor.

Sources:
- ``/dev/videoN`` or a device index: OpenCV capture; audio from the default
  microphone (``--audio mic``, sounddevice) or silence (``--audio none``).
- An RTSP/HTTP URL or a media file: PyAV demuxes video and audio together and both
  are stamped by their presentation time, so they stay aligned; a file is paced at
  real time, as if it were live.

Frames and audio go into the same ROS-free StreamProcessor the ROS node uses (latest
frame wins, audio-coverage wait, one worker); outputs are written as an overlay video
(``--out``/live.mp4, plus live.jsonl with one line per processed frame) and shown with
``--display`` where OpenCV has a GUI.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Callable

import cv2

from .errors import InputError
from .stream_processor import StreamOutput, StreamProcessor, StreamSettings
from .streaming import BlockClock
from .throttle import ThrottledWarnings

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000


def _is_camera(source: str) -> bool:
    return source.isdigit() or source.startswith("/dev/video")


def is_live_source(source: str) -> bool:
    return _is_camera(source) or "://" in source


class PyAVSource:
    """Video + audio of a URL or file, stamped on the wall clock from their presentation times."""

    def __init__(self, source: str, realtime: bool):
        import av

        try:
            self.container = av.open(source, options={"rtsp_transport": "tcp"} if source.startswith("rtsp") else None)
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(f"cannot open {source}: {exc}") from None
        if not self.container.streams.video:
            raise InputError(f"{source} has no video stream")
        self.video = self.container.streams.video[0]
        self.audio = self.container.streams.audio[0] if self.container.streams.audio else None
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE) if self.audio else None
        self.realtime = realtime  # pace a file at its own speed; a live stream paces itself

    def run(self, on_frame: Callable, on_audio: Callable, stop: threading.Event) -> None:
        start, t0 = time.time(), None
        streams = [self.video] + ([self.audio] if self.audio is not None else [])
        for packet in self.container.demux(*streams):
            if stop.is_set():
                break
            for frame in packet.decode():
                if frame.time is None:
                    continue
                t0 = frame.time if t0 is None else t0
                stamp = start + frame.time - t0
                if self.realtime and stamp > time.time():
                    stop.wait(stamp - time.time())
                if packet.stream.type == "video":
                    on_frame(frame.to_ndarray(format="rgb24"), stamp)
                else:
                    for out in self.resampler.resample(frame):
                        on_audio(out.to_ndarray().reshape(-1), stamp)
        self.container.close()


class CameraSource:
    """A V4L2 camera through OpenCV, stamped on arrival (plus the microphone when asked)."""

    def __init__(self, source: str, microphone: bool):
        self.capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
        if not self.capture.isOpened():
            raise InputError(f"cannot open camera {source} (OpenCV); check the device and its permissions")
        self.microphone = microphone

    def run(self, on_frame: Callable, on_audio: Callable, stop: threading.Event) -> None:
        stream = None
        if self.microphone:
            import sounddevice as sd

            clock = BlockClock()

            def capture(data, frames, info, status):
                on_audio(data[:, 0].copy(), clock.stamp(time.time(), info.currentTime, info.inputBufferAdcTime,
                                                        frames, SAMPLE_RATE)[0])

            stream = sd.InputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32", blocksize=1600, callback=capture)
            stream.start()
        try:
            while not stop.is_set():
                ok, bgr = self.capture.read()
                if not ok:
                    raise InputError("the camera stopped delivering frames")
                on_frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), time.time())
        finally:
            if stream is not None:
                stream.close()
            self.capture.release()


class LiveWriter:
    """Overlay video + one JSON line per processed frame (called from the worker thread)."""

    def __init__(self, out: Path, fps: float, display: bool):
        from .visualize import overlay

        self._overlay = overlay
        out.mkdir(parents=True, exist_ok=True)
        self.video_path, self.log_path = out / "live.mp4", out / "live.jsonl"
        self._log = self.log_path.open("w")
        self._writer = None
        self._fps = fps
        self.display = display
        self.count = 0

    def __call__(self, out: StreamOutput) -> None:
        res = out.result
        image = self._overlay(out.rgb, res.mask, res.heatmap, res.labels, heard_not_visible=res.heard_not_visible)
        if self._writer is None:
            self._size = (image.shape[1], image.shape[0])
            self._writer = cv2.VideoWriter(str(self.video_path), cv2.VideoWriter_fourcc(*"mp4v"), self._fps, self._size)
        if (image.shape[1], image.shape[0]) != self._size:  # the stream changed resolution: one video size
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)
        self._log.write(json.dumps({
            "stamp": round(out.frame.stamp, 3), "latency_ms": round((time.time() - out.frame.stamp) * 1e3, 1),
            "audio_coverage": round(out.coverage, 3), "silent": res.silent,
            "labels": [[n, round(s, 4)] for n, s in res.labels], "mask_fraction": round(float(res.mask.mean()), 5),
        }) + "\n")
        self._log.flush()
        self.count += 1
        if self.display:
            cv2.imshow("avs", image)
            cv2.waitKey(1)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
        self._log.close()


def run_live(args, pipeline) -> int:
    """Segment ``args.input`` live until it ends, ``--seconds`` pass or Ctrl-C; returns the exit code."""
    source = str(args.input)
    audio = (args.audio or ("mic" if _is_camera(source) else "stream")).lower()
    if _is_camera(source):
        if audio not in ("mic", "none"):
            raise InputError(f"a camera's audio is --audio mic or --audio none, got {args.audio!r}")
        reader = CameraSource(source, microphone=audio == "mic")
    else:
        if audio not in ("stream", "none"):
            raise InputError(f"a stream's audio is its own track (default) or --audio none, got {args.audio!r}")
        reader = PyAVSource(source, realtime="://" not in source)
    if args.display and not _has_gui():
        raise InputError("--display needs OpenCV with a GUI (pip install opencv-python); "
                         "this one is headless: use the overlay video in --out")
    writer = LiveWriter(Path(args.out), fps=args.live_fps, display=args.display)
    settings = StreamSettings(window_s=float(pipeline.cfg["window_s"]), audio_span_s=pipeline.audio_span_s)
    warnings = ThrottledWarnings(log, interval_s=5.0)
    processor = StreamProcessor(pipeline, decode=lambda rgb: rgb, on_output=writer, settings=settings, warn=warnings.warn)
    if audio == "none":
        settings.wait_s = 0.0  # nothing to wait for: windows are silence
    stop = threading.Event()
    failure: list[BaseException] = []

    def read() -> None:
        try:
            reader.run(processor.offer_frame, lambda samples, t: processor.add_audio(samples, t, SAMPLE_RATE), stop)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            failure.append(exc)
        finally:
            stop.set()

    pipeline.warmup()
    processor.start()
    thread = threading.Thread(target=read, name="avs-live-source", daemon=True)
    thread.start()
    try:
        stop.wait(args.seconds)
    except KeyboardInterrupt:
        pass
    stop.set()
    thread.join(5)
    while processor.slot.depth() or processor.busy_s():
        time.sleep(0.05)  # the last frame in flight
    processor.stop()
    writer.close()
    stats = processor.stats()
    print(f"{writer.count} frame(s) segmented of {stats['frames_accepted']} received "
          f"(latency p50 {stats['latency_p50_ms']} ms, p95 {stats['latency_p95_ms']} ms); "
          f"overlays: {writer.video_path}, per frame: {writer.log_path}")
    if failure:
        raise failure[0]
    return 0 if writer.count else 1


def _has_gui() -> bool:
    try:
        cv2.namedWindow("avs")
    except cv2.error:
        return False
    return True
