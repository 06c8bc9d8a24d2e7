"""avs_node input QoS and run-time input changes, over real DDS with the node in this process.

The node runs in its own rclpy context and executor thread; the publishers are a
separate client node (own context, same domain), so everything crosses DDS. The
model is a stand-in (``StubPipeline``) where only streaming behaviour is tested
(QoS choice, stall diagnostics); the frame-size test runs the real pipeline.
"""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest
from ros_harness import Client, unique_domain_id, wait_until

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

import rclpy  # noqa: E402
from avs_core.pipeline import AVSPipeline  # noqa: E402
from avs_core.types import AVSResult  # noqa: E402
from avs_ros.avs_node import AvsNode  # noqa: E402
from avs_ros.conversions import numpy_to_image_msg  # noqa: E402
from avs_ros.params import load_config  # noqa: E402
from avs_ros.playback import Player, still_scene  # noqa: E402
from avs_ros.recorder import Recorder  # noqa: E402

NS = "/q"
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class StubPipeline:
    """Empty masks at frame size; ``gate`` (when given) holds every call until set."""

    device = "cpu"
    direction = None  # no microphone-array direction stage
    audio_span_s = 1.0  # the window alone

    def __init__(self, gate: threading.Event | None = None):
        self.gate = gate
        self.calls = 0
        self.stamps: list[float] = []  # t_end (frame stamp) of every window the model finished

    def warmup(self) -> None:
        pass

    def update(self, **values) -> None:
        pass

    def audio_tags(self, samples, sample_rate, k=5):
        return []

    def __call__(self, window):
        self.calls += 1
        if self.gate is not None:
            self.gate.wait()
        self.stamps.append(window.t_end)
        h, w = window.frame.shape[:2]
        return AVSResult(np.zeros((h, w), bool), np.zeros((h, w), np.float32), [], {"total": 1.0})


class NodeUnderTest:
    def __init__(self, domain: int, cfg: dict | None = None, **params):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        overrides = [Parameter(name, value=value) for name, value in
                     {"cue_refresh_s": 0.0, "pipeline.device": "cpu", **params}.items()]
        self.node = AvsNode(cfg or load_config(), context=self.context, namespace=NS, parameter_overrides=overrides)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def start(self) -> None:
        assert self.node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert self.node.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def image_qos(self) -> str:
        entry = self.node._subs.get("image")
        return entry.qos if entry is not None else "none"

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2)  # first: no callback may run on what is destroyed next
        self.thread.join(5)
        self.node._stop_processing()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def system(monkeypatch):
    made = []

    def make(pipeline=None, **params):
        if pipeline is not None:
            monkeypatch.setattr(AVSPipeline, "from_config", classmethod(lambda cls, cfg=None: pipeline))
        domain = unique_domain_id()
        node = NodeUnderTest(domain, **params)
        client = Client(domain)
        made.append((node, client))
        return node, client

    yield make
    for node, client in made:
        client.close()
        node.close()


def frame_msg(stamp_s: float, frame_id: str, width: int = 64, height: int = 48, rgb=None):
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    from avs_ros.conversions import to_stamp

    image = rgb if rgb is not None else np.zeros((height, width, 3), np.uint8)
    return numpy_to_image_msg(image, "rgb8", Header(stamp=to_stamp(stamp_s, Time), frame_id=frame_id), Image)


def frames_arrive(client, recorder, publishers: dict, rounds: int = 4) -> set[str]:
    """Publish ``rounds`` frames from each publisher (frame_id = its name); the names whose frames came back as masks."""
    names = set()
    for _ in range(rounds):
        for name, pub in publishers.items():
            stamp = client.node.get_clock().now().nanoseconds * 1e-9
            pub.publish(frame_msg(stamp, name))
            if wait_until(lambda: any(m.frame_id == name and m.stamp == pytest.approx(stamp, abs=1e-6)
                                      for m in recorder.masks()), 5):
                names.add(name)
    return names


def test_qos_auto_follows_reliable_best_effort_and_mixed_publishers(system):
    node, client = system(StubPipeline(), **{"audio.wait_s": 0.0})
    node.start()
    recorder = Recorder(client.node, prefix=NS)
    log = DiagnosticsLog(client)
    topic = f"{NS}/image"
    assert node.image_qos() == "sensor_data", "no publisher yet: best effort matches any that comes"

    reliable = client.removable_publisher(Image, topic, RELIABLE)
    assert wait_until(lambda: node.image_qos() == "reliable", 15), "every publisher reliable -> reliable"
    assert frames_arrive(client, recorder, {"rel": reliable}) == {"rel"}

    best_effort = client.removable_publisher(Image, topic, qos_profile_sensor_data)
    assert wait_until(lambda: node.image_qos() == "sensor_data", 15), "mixed publishers -> best effort"
    # Both publishers are heard (a reliable subscription would never match the best-effort one).
    assert frames_arrive(client, recorder, {"rel": reliable, "be": best_effort}) == {"rel", "be"}

    client.node.destroy_publisher(best_effort)
    assert wait_until(lambda: node.image_qos() == "reliable", 15), "back to reliable once the best-effort one left"
    # A publisher whose QoS changes at run time: it is re-created best-effort.
    client.node.destroy_publisher(reliable)
    changed = client.removable_publisher(Image, topic, qos_profile_sensor_data)
    assert wait_until(lambda: node.image_qos() == "sensor_data", 15)
    assert frames_arrive(client, recorder, {"changed": changed}) == {"changed"}
    assert node.node.warnings.counts["qos_change"] >= 4
    assert wait_until(lambda: log.latest("input image") is not None
                      and values(log.latest("input image"))["qos_in_use"].startswith("best-effort"), 10)
    assert values(log.latest("input image"))["qos_setting"] == "auto"


class DiagnosticsLog:
    """Every DiagnosticStatus the node publishes, newest last."""

    def __init__(self, client):
        self.statuses: list[DiagnosticStatus] = []
        client.node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: self.statuses.extend(m.status), 50)

    def latest(self, concern: str) -> DiagnosticStatus | None:
        return next((s for s in reversed(list(self.statuses)) if s.name.endswith(concern)), None)


def values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def test_worker_stall_is_warned_while_it_lasts_and_a_dead_worker_is_an_error(system):
    gate = threading.Event()
    node, client = system(StubPipeline(gate), **{"audio.wait_s": 0.0, "stall_timeout_s": 1.0, "diagnostics_period_s": 0.2})
    node.start()
    log = DiagnosticsLog(client)
    pub = client.node.create_publisher(Image, f"{NS}/image", RELIABLE)
    assert wait_until(lambda: log.latest("sounding-object segmentation") is not None, 10)
    assert log.latest("sounding-object segmentation").level == DiagnosticStatus.OK
    assert wait_until(lambda: pub.get_subscription_count() > 0, 10)
    pub.publish(frame_msg(client.node.get_clock().now().nanoseconds * 1e-9, "cam"))
    # The worker is now inside the model and stays there: WARN once stall_timeout_s has passed.
    assert wait_until(lambda: log.latest("sounding-object segmentation").level == DiagnosticStatus.WARN, 15)
    status = log.latest("sounding-object segmentation")
    assert "stuck" in status.message and status.hardware_id == "cpu"
    assert wait_until(lambda: node.node.warnings.counts["worker_stall"] >= 1, 5)
    gate.set()  # the stall ends: OK again, not a latched warning
    assert wait_until(lambda: log.latest("sounding-object segmentation").level == DiagnosticStatus.OK, 10)
    assert node.node.stream.stop()  # the worker is gone while the node is active
    assert wait_until(lambda: log.latest("sounding-object segmentation").level == DiagnosticStatus.ERROR, 10)
    assert "not running" in log.latest("sounding-object segmentation").message


def test_frame_size_changes_mid_stream_and_oversized_frames_get_guidance(system, asset, tmp_path, monkeypatch):
    for name in ("efficientat_mn04", "deeplabv3_voc", "grace_hopper", "speech"):
        asset(name)
    profile = tmp_path / "small_shm.xml"
    profile.write_text(SMALL_SHM_PROFILE)
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", str(profile))  # read by the node at construction
    node, client = system(**{"audio.wait_s": 0.3, "qos": "reliable"})
    node.start()
    recorder = Recorder(client.node, prefix=NS)
    player = Player(client.node, image_topic=f"{NS}/image", audio_topic=f"{NS}/audio", reliable=True)
    assert wait_until(lambda: player.image_pub.get_subscription_count() > 0 and player.audio_pub.get_subscription_count() > 0, 15)
    scene = still_scene("grace_hopper", "speech")
    sizes = [(640, 480), (1280, 720), (1920, 1080), (640, 480)]
    t0, chunk = player.now(), 1600
    sent: dict[float, tuple[int, int]] = {}
    pos = 0
    for width, height in sizes:
        frame = cv2.resize(scene.frames[0], (width, height), interpolation=cv2.INTER_AREA)
        for _ in range(2):
            for _ in range(5):  # 0.5 s of speech in real time, then a frame of the current size
                player.publish_audio(scene.audio_at(pos, chunk), t0 + pos / 16000, 16000)
                pos += chunk
                time.sleep(0.1)
            player.publish_frame(frame, player.now())
            sent[player.sent_stamps[-1]] = (height, width)
            # Mask and heatmap are separate messages: wait for both of this frame.
            assert wait_until(lambda: any(m.stamp == player.sent_stamps[-1] and m.heatmap_shape is not None
                                          for m in recorder.masks()), 60), (width, height)
    masks = {m.stamp: m for m in recorder.masks() if m.stamp in sent}
    assert len(masks) == len(sent)
    for stamp, m in masks.items():
        assert m.mask.shape == sent[stamp] and m.heatmap_shape == sent[stamp]
    person = [m for m in masks.values() if m.report and any(label == "person" for label, _ in m.report["labels"])]
    assert {m.mask.shape for m in person if m.mask.mean() > 0.1} >= {(480, 640), (1080, 1920)}, "real masks at every size"
    counts = node.node.warnings.counts
    assert counts["frame_size_change"] == 3
    assert counts["frame_exceeds_shm"] == 2  # 1280x720 (2.6 MiB) and 1920x1080 (5.9 MiB) > the 2 MiB segment


SMALL_SHM_PROFILE = """<?xml version="1.0" encoding="UTF-8" ?>
<dds xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">
  <profiles>
    <transport_descriptors>
      <transport_descriptor>
        <transport_id>small_shm</transport_id>
        <type>SHM</type>
        <segment_size>2097152</segment_size>
      </transport_descriptor>
    </transport_descriptors>
  </profiles>
</dds>
"""
