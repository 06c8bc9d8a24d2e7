"""Bad input and time jumps in sim time, over DDS: one warning that says what to change, then recovery.

avs_node runs with use_sim_time:=true and the ros-drivers audio_common_msgs (fixture
package). This test is the whole robot: it publishes /clock, camera images and
CameraInfo, AudioDataStamped chunks (speech) and a latched AudioInfo, and breaks
them one way at a time. The tests share one node and run in file order; each checks
that the node warned once (warn_interval_s is long, so a repeat would show) and that
masks with audio come back once the input is sane.
"""
from __future__ import annotations

import threading
import time

import msg_fixtures
import numpy as np
import pytest
from ros_harness import Client, start_node, wait_until
from sim_harness import NS, node_args

from builtin_interfaces.msg import Time  # noqa: E402
from rcl_interfaces.msg import Parameter as ParameterMsg  # noqa: E402
from rcl_interfaces.msg import ParameterType, ParameterValue  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from avs_core.audio.frontend import resample  # noqa: E402
from avs_ros import audio_transport as at  # noqa: E402
from avs_ros.conversions import numpy_to_image_msg, rgb_to_compressed_msg, to_stamp  # noqa: E402
from avs_ros.playback import still_scene  # noqa: E402
from avs_ros.recorder import Recorder  # noqa: E402

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
STEP_S, CHUNK_S, FRAME_S = 0.01, 0.1, 0.1


class Sim:
    """Sim time, camera and microphone driven from this process."""

    def __init__(self, node, msgs):
        self.node, self.msgs = node, msgs
        self.clock_pub = node.create_publisher(Clock, "/clock", 10)
        self.image_pub = node.create_publisher(Image, "/camera/image_raw", RELIABLE)
        self.camera_info_pub = node.create_publisher(CameraInfo, "/camera/camera_info", RELIABLE)
        self.audio_pub = node.create_publisher(msgs.AudioDataStamped, "/audio/audio_stamped", RELIABLE)
        self.info_pub = node.create_publisher(msgs.AudioInfo, "/audio/audio_info", LATCHED)
        scene = still_scene("grace_hopper", "speech", width=160)
        self.rgb = scene.frames[0]
        speech = scene.audio[2 * 16000:]  # after speech.wav's 2 s of room noise
        self.audio = {16000: speech, 48000: resample(speech, 16000, 48000).astype(np.float32)}
        self.mp3 = _mp3(speech)
        self.t, self.pos = 2000.0, 0

    def header(self, t: float, frame: str) -> Header:
        return Header(stamp=to_stamp(t, Time), frame_id=frame)

    def info(self, rate: int = 16000, coding: str = "wave", fmt: str = "S16LE") -> None:
        self.info_pub.publish(self.msgs.AudioInfo(channels=1, sample_rate=rate, sample_format=fmt, bitrate=rate * 16,
                                                  coding_format=coding))

    def _audio_msg(self, t: float, mode: str, rate: int):
        msg = self.msgs.AudioDataStamped(header=self.header(t - CHUNK_S, "microphone"))
        if mode == "mp3":
            per_chunk = int(len(self.mp3) * CHUNK_S / (len(self.audio[16000]) / 16000))
            start = (self.pos * per_chunk) % len(self.mp3)
            msg.audio.data = self.mp3[start:start + per_chunk]
        else:
            n = int(rate * CHUNK_S)
            track = self.audio[rate]
            idx = (np.arange(self.pos * n, (self.pos + 1) * n)) % len(track)
            msg.audio.data = at.float_to_s16(track[idx]).astype("<i2").tobytes()
        self.pos += 1
        return msg

    def run(self, seconds: float, clock: bool = True, audio: str | None = "s16", rate: int = 16000,
            image_stamp=None) -> None:
        """Advance sim time ``seconds`` in real time, publishing what is asked."""
        start = time.monotonic()
        for k in range(1, int(round(seconds / STEP_S)) + 1):
            self.t += STEP_S
            if clock:
                self.clock_pub.publish(Clock(clock=to_stamp(self.t, Time)))
            if k % int(round(CHUNK_S / STEP_S)) == 0 and audio is not None:
                self.audio_pub.publish(self._audio_msg(self.t, audio, rate))
            if k % int(round(FRAME_S / STEP_S)) == 0:
                stamp = self.t if image_stamp is None else image_stamp(self.t)
                self.image_pub.publish(numpy_to_image_msg(self.rgb, "rgb8", self.header(stamp, "camera"), Image))
                self.camera_info_pub.publish(CameraInfo(header=self.header(stamp, "camera"), width=160, height=188))
            time.sleep(max(0.0, start + k * STEP_S - time.monotonic()))


def _mp3(samples: np.ndarray, rate: int = 16000) -> bytes:
    import av

    codec = av.CodecContext.create("libmp3lame", "w")
    codec.sample_rate, codec.layout, codec.format = rate, "mono", "s16p"
    pcm = at.float_to_s16(samples)
    out = b""
    for i in range(0, len(pcm) - 1152, 1152):
        frame = av.AudioFrame.from_ndarray(pcm[None, i:i + 1152], format="s16p", layout="mono")
        frame.sample_rate = rate
        out += b"".join(bytes(p) for p in codec.encode(frame))
    return out


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("simtime")
    args = node_args("/audio/audio_stamped", "audio_common_stamped") + [
        "-p", "warn_interval_s:=600.0", "-p", "stall_timeout_s:=1.5"]
    proc, client = start_node(tmp / "node.log", args, **msg_fixtures.env("ros_drivers"))
    with msg_fixtures.activated("ros_drivers") as msgs:
        system = type("System", (), {})()
        system.proc, system.client = proc, client
        system.recorder = Recorder(client.node, prefix=NS)
        system.sim = Sim(client.node, msgs)
        assert wait_until(lambda: system.sim.audio_pub.get_subscription_count() > 0
                          and system.sim.info_pub.get_subscription_count() > 0
                          and client.node.count_publishers(f"{NS}/mask") > 0, 30), proc.log()[-2000:]
        yield system
    client.close()
    rc = proc.stop()
    assert rc == 0 and "Traceback" not in proc.log(), proc.log()[-4000:]


def warned(system, kind: str) -> list[str]:
    return [line for line in system.proc.log().splitlines() if f"[{kind}]" in line]


def recovers(system, since: int, seconds: float = 3.0, min_coverage: float = 0.9, **run) -> list[dict]:
    """Run sane input; the reports after index ``since`` must include frames with their audio (and speech masks)."""
    system.sim.run(seconds, **run)
    wait_until(lambda: False, 1.0)
    new = system.recorder.reports[since:]
    good = [r for r in new if r["window"]["audio_coverage"] >= min_coverage]
    assert good, [(r["stamp"], r["window"]["audio_coverage"]) for r in new]
    assert any(r["mask_fraction"] > 0.01 for r in good), [(r["stamp"], r["labels"]) for r in good]
    assert system.proc.alive()
    return new


def test_audio_info_never_arrives_then_arrives(system):
    system.sim.run(2.0)  # audio and images, no AudioInfo yet
    assert wait_until(lambda: warned(system, "bad_audio"), 5), system.proc.log()[-2000:]
    lines = warned(system, "bad_audio")
    assert len(lines) == 1 and "no AudioInfo" in lines[0] and "audio_info" in lines[0], lines
    assert all(r["window"]["audio_coverage"] == 0.0 for r in system.recorder.reports)
    since = len(system.recorder.reports)
    system.sim.info()
    recovers(system, since)


def test_audio_info_changes_rate_mid_stream(system):
    since = len(system.recorder.reports)
    system.sim.info(rate=48000)
    recovers(system, since, rate=48000)
    lines = warned(system, "audio_info_changed")
    assert len(lines) == 1 and "sample_rate 16000 -> 48000" in lines[0], lines
    system.sim.info(rate=16000)
    system.sim.run(1.0)


def test_mp3_chunks_are_decoded_with_one_notice(system):
    since = len(system.recorder.reports)
    system.sim.info(coding="mp3", fmt="")
    new = recovers(system, since, seconds=4.0, audio="mp3", min_coverage=0.8)
    notices = [line for line in system.proc.log().splitlines() if "format:=wave" in line]
    assert len(notices) == 1 and "mp3" in notices[0], notices
    assert not warned(system, "bad_audio")[1:], "mp3 chunks were rejected"
    assert max(r["window"]["audio_coverage"] for r in new) >= 0.9
    system.sim.info()


def test_zero_and_future_image_stamps(system):
    system.sim.run(0.5, image_stamp=lambda t: 0.0)
    system.sim.run(0.5, image_stamp=lambda t: t + 1000.0)
    assert wait_until(lambda: warned(system, "zero_stamp") and warned(system, "future_stamp:image"), 5)
    assert len(warned(system, "zero_stamp")) == 1 and len(warned(system, "future_stamp:image")) == 1
    assert "use_sim_time" in warned(system, "future_stamp:image")[0]
    before = system.sim.t
    new = recovers(system, len(system.recorder.reports))
    assert all(r["stamp"] < before + 1000.0 for r in new), "a future stamp must not become the stamp guard"


def test_clock_jumps_back_then_forward(system):
    jumps = system.proc.log().count("jumped back")
    last = system.recorder.reports[-1]["stamp"]
    system.sim.t -= 30.0  # a simulator reset
    since = len(system.recorder.reports)
    new = recovers(system, since)
    assert system.proc.log().count("jumped back") == jumps + 1
    assert all(r["stamp"] < last for r in new)
    system.sim.t += 60.0  # and forward past where it was
    since = len(system.recorder.reports)
    new = recovers(system, since)
    assert all(r["stamp"] > last for r in new)
    assert system.proc.log().count("jumped back") == jumps + 1


def test_clock_stopping_in_sim_time_is_reported(system):
    system.sim.run(3.0, clock=False)  # the camera and microphone go on, /clock does not
    assert wait_until(lambda: warned(system, "clock_stalled"), 5), system.proc.log()[-2000:]
    lines = warned(system, "clock_stalled")
    assert len(lines) == 1 and "/clock" in lines[0] and "use_sim_time" in lines[0], lines
    recovers(system, len(system.recorder.reports))


def _set(system, name: str, value) -> object:
    client = system.client.node.create_client(SetParameters, f"{NS}/avs_node/set_parameters")
    if isinstance(value, bool):
        pv = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
    else:
        pv = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
    return system.client.call(client, SetParameters.Request(parameters=[ParameterMsg(name=name, value=pv)])).results[0]


def test_rclpy_parameters_pass_the_parameter_callback(system):
    assert _set(system, "use_sim_time", False).successful
    assert _set(system, "use_sim_time", True).successful
    rejected = _set(system, "qos", "reliable")
    assert not rejected.successful and "qos" in rejected.reason
    recovers(system, len(system.recorder.reports))


def test_wrong_image_type_is_reported_with_the_fix(system):
    # Another participant: Fast DDS refuses two types on one topic within a participant.
    other = Client(system.client.domain_id, name="camera_compressed")
    pub = other.node.create_publisher(CompressedImage, "/camera/image_raw", RELIABLE)
    try:
        stop = threading.Event()
        header = system.sim.header(system.sim.t, "camera")
        thread = threading.Thread(target=lambda: [pub.publish(rgb_to_compressed_msg(system.sim.rgb, header, CompressedImage))
                                                  or stop.wait(0.1) for _ in range(40) if not stop.is_set()])
        thread.start()
        assert wait_until(lambda: warned(system, "wrong_type:image"), 10), system.proc.log()[-2000:]
        stop.set()
        thread.join()
    finally:
        other.close()
    line = warned(system, "wrong_type:image")[0]
    assert "sensor_msgs/msg/CompressedImage" in line and "image_transport:=compressed" in line, line
    recovers(system, len(system.recorder.reports))
