"""mic_node: microphone -> stamped audio chunks, via sounddevice (PortAudio).

Each chunk is stamped with the capture time of its first sample: PortAudio's
``inputBufferAdcTime`` (stream clock) mapped to the ROS clock through the
callback's ``currentTime``. Devices that report no ADC time fall back to
"now minus the chunk duration" (logged once). A watchdog reopens the stream when
the device disappears or stops delivering (unplug/replug), logging rate-limited errors.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Any

import rclpy
from builtin_interfaces.msg import Time
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

from avs_core.errors import AVSError, ConfigError
from avs_core.streaming import BlockClock
from avs_core.throttle import ThrottledWarnings

from . import audio_transport as at
from .conversions import to_stamp
from .node_main import node_main, quiet_after_shutdown, ros_session
from .params import declare, mic_specs


class MicNode(Node):
    def __init__(self, cfg: dict[str, dict[str, Any]], node_name: str = "mic_node", **kwargs):
        super().__init__(node_name, **kwargs)
        self.values = declare(self, mic_specs(cfg))
        self.warnings = ThrottledWarnings(self.get_logger(), 5.0)
        self.sample_rate, self.channels = self.values["sample_rate"], self.values["channels"]
        self.encoder = at.AudioEncoder(self.values["transport"], self.sample_rate, self.channels)
        self.transport = self.encoder.transport
        self.blocksize = max(1, int(round(self.values["chunk_s"] * self.sample_rate)))
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.pub = self.create_publisher(self.encoder.msg_type, "audio", reliable)
        if self.encoder.info_type is not None:
            info_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self.info_pub = self.create_publisher(self.encoder.info_type, "audio_info", info_qos)
            # Periodic as well as latched, like audio_capture_node: volatile subscribers that join late still learn the format.
            self.create_timer(1.0, lambda: self.info_pub.publish(self.encoder.info_msg()))
        self._blocks: queue.Queue = queue.Queue(maxsize=100)
        self._stream = None
        self._last_block = time.monotonic()
        self._block_clock = BlockClock()  # ROS time of each block's first sample
        self._warned_no_adc = False
        self.published = 0
        self._stop = threading.Event()
        self._publisher = threading.Thread(target=self._publish_loop, name="mic-publisher", daemon=True)
        self._publisher.start()
        self._open()
        self.create_timer(self.values["reconnect_s"], self._watchdog)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _device(self):
        dev = self.values["device"]
        return int(dev) if dev.strip().isdigit() else (dev or None)

    def _open(self) -> bool:
        import sounddevice as sd

        try:
            stream = sd.InputStream(device=self._device(), samplerate=self.sample_rate, channels=self.channels,
                                    dtype="float32", blocksize=self.blocksize, callback=self._callback)
            stream.start()
        except Exception as exc:  # noqa: BLE001 - PortAudio raises PortAudioError/ValueError for missing devices
            self.warnings.warn("device", f"cannot open input device {self.values['device'] or '(default)'} at "
                               f"{self.sample_rate} Hz x{self.channels}: {exc}; retrying every {self.values['reconnect_s']} s",
                               level="error")
            return False
        self._stream, self._last_block = stream, time.monotonic()
        self.get_logger().info(f"capturing from {sd.query_devices(stream.device)['name']!r} at {self.sample_rate} Hz "
                               f"x{self.channels}, {self.blocksize} samples per chunk, transport {self.transport}")
        return True

    def _close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.abort()
                self._stream.close()
            except Exception:  # noqa: BLE001 - a vanished device may fail to close; it is gone either way
                pass
            self._stream = None

    def _watchdog(self) -> None:
        import sounddevice as sd

        dead = self._stream is None or not self._stream.active
        # PortAudio may take over a second to deliver the first block of a new stream.
        quiet = time.monotonic() - self._last_block > max(3.0, 10 * self.values["chunk_s"])
        if not dead and not quiet:
            return
        if self._stream is not None:
            self.warnings.warn("device", "input device stopped delivering audio (unplugged?): reopening", level="error")
        self._close()
        # PortAudio only sees devices plugged in after start-up when re-initialised.
        sd._terminate()
        sd._initialize()
        self._block_clock.reset()
        self._open()

    def _callback(self, indata, frames, time_info, status) -> None:
        # PortAudio thread: stamp and hand over, nothing else.
        ros_now = self._now()
        self._last_block = time.monotonic()
        stamp, from_adc = self._block_clock.stamp(ros_now, time_info.currentTime, time_info.inputBufferAdcTime, frames,
                                                  self.sample_rate)
        try:
            self._blocks.put_nowait((indata.copy(), stamp, from_adc, str(status) if status else ""))
        except queue.Full:
            pass  # the publisher thread is stuck; counted below as an overflow when it resumes

    def _publish_loop(self) -> None:
        while not self._stop.is_set() and self.context.ok():
            try:
                samples, stamp, from_adc, status = self._blocks.get(timeout=0.2)
            except queue.Empty:
                continue
            if status:
                self.warnings.warn("stream_status", f"PortAudio reports: {status}")
            if not from_adc and not self._warned_no_adc:
                self._warned_no_adc = True
                self.get_logger().warning("device reports no ADC timestamps: stamping chunks from their arrival times")
            header = Header(stamp=to_stamp(stamp, Time), frame_id=self.values["frame_id"])
            with quiet_after_shutdown(self):
                self.pub.publish(self.encoder.encode(samples, header))
                self.published += 1

    def shutdown(self) -> None:
        self._stop.set()
        self._close()
        self._publisher.join(timeout=2)


def run(cfg: dict[str, dict[str, Any]], ros_args: list[str] | None = None) -> int:
    with ros_session(["mic_node", *(ros_args or [])]):
        node = None
        try:
            node = MicNode(cfg)
            rclpy.spin(node)
        except (AVSError, ConfigError) as exc:
            print(f"mic_node: {exc}")
            return 2
        finally:
            if node is not None:
                node.shutdown()
                node.destroy_node()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mic_node`` executable: ``mic_node [--config avs.yaml] [--ros-args ...]``."""
    return node_main("mic_node", run, argv)
