"""Publish a recorded scene as live camera + microphone topics at real-time pace.

Used by ``avs demo`` and the DDS tests. Frames are stamped with the ROS time at
which they are published (a live camera's semantics); audio chunks are published
when the chunk has "finished recording", so a subscriber sees the same timing as
from a real microphone.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from avs_core import assets
from avs_core.audio.frontend import read_audio, resample, to_mono_float
from avs_core.image import read_image
from avs_core.media import read_video

from . import audio_transport as at
from .conversions import numpy_to_image_msg, rgb_to_compressed_msg, stamp_seconds, to_stamp
from .node_main import quiet_after_shutdown


LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


@dataclass
class Scene:
    name: str
    frames: list[np.ndarray]  # RGB uint8; a still scene has one
    fps: float
    audio: np.ndarray  # (n,) float32 mono
    sample_rate: int

    def frame_at(self, t: float) -> np.ndarray:
        return self.frames[min(len(self.frames) - 1, int(t * self.fps)) % len(self.frames)]

    def audio_at(self, start: int, n: int) -> np.ndarray:
        """``n`` samples from index ``start``, looping the track."""
        idx = (np.arange(start, start + n) % len(self.audio))
        return self.audio[idx]


def _fit(rgb: np.ndarray, width: int) -> np.ndarray:
    if rgb.shape[1] == width:
        return rgb
    height = int(round(rgb.shape[0] * width / rgb.shape[1]))
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def _prepare_audio(samples: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    mono = to_mono_float(samples, sr)
    return np.asarray(resample(mono, sr, target_sr) if sr != target_sr else mono, dtype=np.float32)


def video_scene(asset: str = "bbb_30s", seconds: float = 10.0, width: int = 640, sample_rate: int = 16000) -> Scene:
    """A clip from the shared assets (default Big Buck Bunny) with its own audio track."""
    path = assets.resolve(asset)
    video = read_video(path, max_seconds=seconds)
    samples, sr = read_audio(path)
    audio = _prepare_audio(samples, sr, sample_rate)[: int(seconds * sample_rate)]
    return Scene(asset, [_fit(f, width) for f in video.frames], video.fps, audio, sample_rate)


def still_scene(image: str = "grace_hopper", sound: str | None = "speech", fps: float = 30.0,
                width: int | None = None, sample_rate: int = 16000) -> Scene:
    """A shared photo shown continuously with a shared WAV (or silence when ``sound`` is None)."""
    rgb = read_image(assets.resolve(image))
    if width:
        rgb = _fit(rgb, width)
    if sound is None:
        audio = np.zeros(sample_rate, np.float32)
    else:
        samples, sr = read_audio(assets.resolve(sound))
        audio = _prepare_audio(samples, sr, sample_rate)
    return Scene(f"{image}+{sound or 'silence'}", [rgb], fps, audio, sample_rate)


class Player:
    """Publishes a Scene on ``image`` and ``audio`` topics of ``node`` from a background thread."""

    def __init__(self, node, image_topic: str = "image", audio_topic: str = "audio", compressed: bool = False,
                 audio_transport: str = "float32", reliable: bool = False, chunk_s: float = 0.1, frame_id: str = "camera",
                 sample_rate: int = 16000, channels: int = 1):
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE) if reliable else qos_profile_sensor_data
        self.node = node
        self.compressed = compressed
        self.chunk_s = chunk_s
        self.frame_id = frame_id
        self.image_pub = node.create_publisher(CompressedImage if compressed else Image, image_topic, qos)
        self.encoder = at.AudioEncoder(audio_transport, sample_rate, channels)
        self.transport = self.encoder.transport
        self.audio_pub = node.create_publisher(self.encoder.msg_type, audio_topic, qos)
        if self.encoder.info_type is not None:  # latched beside the audio topic, as audio_capture_node does
            info_topic = audio_topic.rsplit("/", 1)[0] + "/audio_info" if "/" in audio_topic else "audio_info"
            self.info_pub = node.create_publisher(self.encoder.info_type, info_topic, LATCHED)
            self.info_pub.publish(self.encoder.info_msg())
        self.sent_stamps: list[float] = []  # frame stamps (header value as float), in publish order
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def header(self, stamp: float) -> Header:
        return Header(stamp=to_stamp(stamp, Time), frame_id=self.frame_id)

    def publish_frame(self, rgb: np.ndarray, stamp: float) -> None:
        header = self.header(stamp)
        msg = rgb_to_compressed_msg(rgb, header, CompressedImage) if self.compressed else numpy_to_image_msg(rgb, "rgb8", header, Image)
        self.image_pub.publish(msg)
        self.sent_stamps.append(stamp_seconds(header.stamp))  # as subscribers will compute it, bit for bit

    def publish_audio(self, samples: np.ndarray, first_sample_stamp: float, sample_rate: int) -> None:
        if sample_rate != self.encoder.sample_rate:
            raise ValueError(f"this Player publishes {self.encoder.sample_rate} Hz audio, got {sample_rate} Hz")
        self.audio_pub.publish(self.encoder.encode(samples, self.header(first_sample_stamp)))

    def play(self, scene: Scene, seconds: float, camera_hz: float | None = None, frames: bool = True) -> None:
        """Publish ``seconds`` of ``scene`` in real time (blocking); camera at ``camera_hz`` (default scene fps)."""
        hz = camera_hz or scene.fps
        chunk = max(1, int(round(self.chunk_s * scene.sample_rate)))
        t0 = self.now()
        next_frame, next_chunk, sample_pos = 0, 1, 0
        while not self._stop.is_set() and self.node.context.ok():
            t_frame = next_frame / hz if frames else float("inf")
            t_audio = next_chunk * chunk / scene.sample_rate
            due = min(t_frame, t_audio)
            if due > seconds:
                break
            delay = t0 + due - self.now()
            if delay > 0:
                time.sleep(delay)
            with quiet_after_shutdown(self.node):
                if t_audio <= t_frame:
                    self.publish_audio(scene.audio_at(sample_pos, chunk), t0 + sample_pos / scene.sample_rate,
                                       scene.sample_rate)
                    sample_pos += chunk
                    next_chunk += 1
                else:
                    self.publish_frame(scene.frame_at(t_frame), t0 + t_frame)
                    next_frame += 1

    def start(self, scene: Scene, seconds: float, **kwargs) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.play, args=(scene, seconds), kwargs=kwargs, daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self) -> None:
        self._stop.set()
        self.join(5)
