"""Subscribe to avs_node's outputs and keep what arrives: for ``avs demo`` reports and the DDS tests.

Latency is measured here, on the receiving side: ROS time when the mask arrives
minus the source frame's stamp (the header the node copied onto the mask).
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from avs_core.streaming import LatencyStats

from .conversions import stamp_seconds


@dataclass
class Output:
    stamp: float
    frame_id: str
    received: float | None = None  # ROS time the mask arrived
    mask: np.ndarray | None = None  # HxW bool
    heatmap_range: tuple[float, float] | None = None
    heatmap_shape: tuple[int, int] | None = None
    report: dict | None = None  # the cues JSON
    overlay_file: str | None = None


@dataclass
class Recorder:
    node: object
    prefix: str = ""  # namespace of the node's outputs, e.g. "/avs"
    overlay_dir: Path | None = None
    heatmap: bool = True  # subscribe to the heatmap (the node serializes it only for a subscriber)
    outputs: dict[float, Output] = field(default_factory=dict)
    diagnostics: list[dict[str, str]] = field(default_factory=list)
    mask_headers: list[tuple[float, str]] = field(default_factory=list)
    reports: list[dict] = field(default_factory=list)  # every cues JSON in arrival order (a looped bag repeats stamps)
    camera_infos: list = field(default_factory=list)  # mask/camera_info messages
    detections: list = field(default_factory=list)  # vision_msgs/Detection2DArray, when vision_msgs imports here

    def __post_init__(self):
        self.latency = LatencyStats(maxlen=100000)
        self._lock = threading.Lock()
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        topic = lambda name: f"{self.prefix}/{name}" if self.prefix else name  # noqa: E731
        self.subs = [self.node.create_subscription(Image, topic("mask"), self._on_mask, qos)]
        if self.heatmap:  # right after the mask: the executor serves subscriptions in creation order
            self.subs.append(self.node.create_subscription(Image, topic("heatmap"), self._on_heatmap, qos))
        self.subs += [
            self.node.create_subscription(String, topic("cues"), self._on_cues, qos),
            self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, qos),
        ]
        self.subs.append(self.node.create_subscription(CameraInfo, topic("mask/camera_info"), self.camera_infos.append, qos))
        try:
            from vision_msgs.msg import Detection2DArray

            self.subs.append(self.node.create_subscription(Detection2DArray, topic("detections"), self.detections.append, qos))
        except ImportError:
            pass  # the node publishes detections only where vision_msgs is installed
        if self.overlay_dir is not None:
            self.overlay_dir.mkdir(parents=True, exist_ok=True)
            self.subs.append(self.node.create_subscription(Image, topic("overlay"), self._on_overlay, qos))

    def _now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _entry(self, stamp: float, frame_id: str) -> Output:
        with self._lock:
            if stamp not in self.outputs:
                self.outputs[stamp] = Output(stamp, frame_id)
            return self.outputs[stamp]

    def _on_mask(self, msg) -> None:
        now = self._now()
        out = self._entry(stamp_seconds(msg.header.stamp), msg.header.frame_id)
        out.received = now
        out.mask = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width) > 0
        self.mask_headers.append((out.stamp, msg.header.frame_id))
        self.latency.add(now - out.stamp)

    def _on_heatmap(self, msg) -> None:
        heat = np.frombuffer(bytes(msg.data), np.float32).reshape(msg.height, msg.width)
        out = self._entry(stamp_seconds(msg.header.stamp), msg.header.frame_id)
        out.heatmap_shape = heat.shape
        out.heatmap_range = (float(heat.min()), float(heat.max()))

    def _on_cues(self, msg) -> None:
        report = json.loads(msg.data)
        self.reports.append(report)
        # The JSON's stamp is computed like stamp_seconds(header.stamp), so it keys the same entry.
        self._entry(report["stamp"], report["frame_id"]).report = report

    def _on_overlay(self, msg) -> None:
        import cv2

        out = self._entry(stamp_seconds(msg.header.stamp), msg.header.frame_id)
        bgr = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)
        path = self.overlay_dir / f"overlay_{out.stamp:.3f}.png"
        cv2.imwrite(str(path), bgr)
        out.overlay_file = path.name

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if "sounding-object" in status.name:
                self.diagnostics.append({kv.key: kv.value for kv in status.values})

    def masks(self) -> list[Output]:
        with self._lock:
            return sorted((o for o in self.outputs.values() if o.mask is not None), key=lambda o: o.stamp)

    def last_diagnostics(self) -> dict[str, str]:
        return self.diagnostics[-1] if self.diagnostics else {}
