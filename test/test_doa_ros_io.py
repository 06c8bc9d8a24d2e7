"""avs_ros.direction without DDS: CameraInfo and TF into the core's types, results into messages."""
from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import require_package

require_package("rclpy", "ROS 2 client library (requirements-ros.txt)")
from builtin_interfaces.msg import Time  # noqa: E402
from geometry_msgs.msg import TransformStamped  # noqa: E402
from sensor_msgs.msg import CameraInfo  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from visualization_msgs.msg import Marker  # noqa: E402

from avs_core.audio.doa import DOAEstimate  # noqa: E402
from avs_core.doa_fusion import DirectionResult  # noqa: E402
from avs_core.geometry import OPTICAL_FROM_BODY  # noqa: E402
from avs_core.types import AVSResult, Window  # noqa: E402
from avs_ros.direction import DirectionIO  # noqa: E402


class Pub:
    def __init__(self):
        self.sent = []

    def publish(self, msg):
        self.sent.append(msg)

    def get_subscription_count(self):
        return 1


class Node:
    def create_lifecycle_publisher(self, kind, name, depth):
        return Pub()


class Buffer:
    """tf2_ros.Buffer stand-in: knows one transform, or none."""

    def __init__(self, transform: TransformStamped | None):
        self.transform, self.asked = transform, []

    def lookup_transform(self, target, source, stamp):
        self.asked.append((target, source, stamp))
        if self.transform is None:
            raise LookupError(f'"{source}" passed to lookupTransform argument source_frame does not exist')
        return self.transform


def make_io(transform="none"):
    warnings = []
    pubs = {}
    io = DirectionIO(Node(), pubs, "mic_array", True, lambda kind, msg: warnings.append((kind, msg)))
    if transform != "none":
        io._tf = Buffer(transform)
    return io, pubs, warnings


def info(fx: float) -> CameraInfo:
    return CameraInfo(header=Header(frame_id="camera_optical"), width=640, height=480,
                      k=[fx, 0.0, 320.0, 0.0, fx, 240.0, 0.0, 0.0, 1.0], d=[0.0] * 5)


def test_uncalibrated_camera_info_warns_and_disables_fusion():
    io, _, warnings = make_io()
    assert io.camera(info(0.0)) is None
    assert warnings and "positive focal lengths" in warnings[0][1]
    cam = io.camera(info(500.0))
    assert cam is not None and cam.K[0, 0] == 500.0
    assert io.camera(info(500.0)) is cam  # same CameraInfo: cached, not rebuilt per frame


def test_transform_from_tf_and_missing_transform_falls_back():
    tf = TransformStamped()
    # The usual camera_link -> optical rotation, published the other way round: array (body) -> optical.
    tf.transform.rotation.x, tf.transform.rotation.y, tf.transform.rotation.z, tf.transform.rotation.w = 0.5, -0.5, 0.5, 0.5
    tf.transform.translation.x = 0.1
    io, _, warnings = make_io(tf)
    pose = io.pose("camera_optical", None)
    np.testing.assert_allclose(pose.rotation, OPTICAL_FROM_BODY, atol=1e-9)
    np.testing.assert_allclose(pose.translation, [0.1, 0.0, 0.0])
    assert io._tf.asked[0][:2] == ("camera_optical", "mic_array")
    io, _, warnings = make_io(None)
    assert io.pose("camera_optical", None) is None  # the pipeline then uses pipeline.doa.array_to_camera
    assert warnings[0][0] == "doa_transform" and "mic_array -> camera_optical" in warnings[0][1]


def test_wrap_gives_each_window_camera_and_pose():
    io, _, _ = make_io(None)
    seen = []
    run = io.wrap(lambda w: seen.append(w) or "result", lambda: info(500.0))
    assert run(Window(np.zeros((480, 640, 3), np.uint8), np.zeros((16000, 4)), 16000, 1.0, 2.0)) == "result"
    assert seen[0].camera.K[0, 0] == 500.0 and seen[0].array_pose is None
    assert io._tf.asked[0][2].nanoseconds == 2_000_000_000  # transform asked at the window's end


def test_publish_doa_vector_and_arrow():
    io, pubs, _ = make_io()
    a = math.radians(30.0)
    est = DOAEstimate(np.array([math.cos(a), -math.sin(a), 0.0]), 0.8, "azimuth", np.array([0, 0, 1.0]), 30.0, None)
    result = AVSResult(np.zeros((4, 4), bool), np.zeros((4, 4), np.float32),
                       doa=DirectionResult(used=True, estimate=est, in_view=True))
    header = Header(stamp=Time(sec=12, nanosec=500), frame_id="camera_optical")
    io.publish(header, result)
    vec = pubs["doa"].sent[0]
    assert vec.header.stamp == header.stamp and vec.header.frame_id == "mic_array"
    assert (vec.vector.x, vec.vector.y) == pytest.approx((math.cos(a), -math.sin(a)))
    arrow = pubs["doa/marker"].sent[0]
    assert arrow.type == Marker.ARROW and arrow.points[1].y < 0 < arrow.points[1].x
    assert io.diagnostics()["doa.azimuth_deg"] == "30.0" and io.diagnostics()["doa.used"] == "True"
