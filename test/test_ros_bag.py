"""A rosbag2 bag replayed in sim time over DDS, looping: masks on speech, none on silence, masks after the loop.

The bag (written here with ``rosbags``: the shared photo of Grace Hopper, 2.5 s of speech
(from 2 s into speech.wav, after its room noise) then 3 s of silence, ros-drivers AudioDataStamped + latched AudioInfo + CameraInfo) is
played twice by ``avs play`` (a child process publishing /clock and the messages at bag
time). avs_node runs with use_sim_time:=true and the fixture audio_common_msgs /
vision_msgs, remapped to the driver topic names, exactly as on a robot replaying a bag.
"""
from __future__ import annotations

import json
import msg_fixtures
import numpy as np
import pytest
from ros_harness import Client, start_process, unique_domain_id, wait_until
from sim_harness import NS, node_args, play

from avs_ros.conversions import stamp_seconds  # noqa: E402
from avs_ros.recorder import Recorder  # noqa: E402

WINDOW_S = 1.0


def loops_of(reports: list[dict]) -> list[list[dict]]:
    """Split reports (arrival order) where the stamps jump back: one list per pass through the bag."""
    out: list[list[dict]] = [[]]
    for report in reports:
        if out[-1] and report["stamp"] < out[-1][-1]["stamp"] - 1.0:
            out.append([])
        out[-1].append(report)
    return out


@pytest.fixture(scope="module")
def bag(tmp_path_factory, asset):
    for name in ("efficientat_mn04", "deeplabv3_voc", "grace_hopper", "speech"):
        asset(name)
    from avs_ros.bag import write_scene_bag

    with msg_fixtures.activated("ros_drivers"):
        return write_scene_bag(tmp_path_factory.mktemp("bag") / "scene", segments=(("speech", 2.5, 2.0), (None, 3.0)))


def test_bag_replay_in_sim_time_through_a_loop(bag, tmp_path):
    domain = unique_domain_id()
    env = msg_fixtures.env("ros_drivers")
    proc = start_process("node", tmp_path / "node.log", domain, node_args(bag.audio_topic, "audio_common_stamped"),
                         ready="active: subscribed", **env)
    client = Client(domain)
    try:
        with msg_fixtures.activated("ros_drivers"):  # the Recorder subscribes vision_msgs detections too
            recorder = Recorder(client.node, prefix=NS)
        assert wait_until(lambda: client.node.count_publishers(f"{NS}/mask") > 0, 20)
        result = play(bag.path, domain, env, loops=2, log_path=tmp_path / "play.log")
        assert result.returncode == 0, (tmp_path / "play.log").read_text()[-2000:]
        assert "2 loop(s)" in (tmp_path / "play.log").read_text()
        wait_until(lambda: False, 3.0)  # the last frames' outputs
        assert proc.alive(), proc.log()[-3000:]
    finally:
        client.close()
        rc = proc.stop()
    log = proc.log()
    assert rc == 0 and "Traceback" not in log, log[-4000:]

    (tmp_path / "reports.json").write_text(json.dumps(recorder.reports, indent=1))  # for a failure's post-mortem
    (speech, s0, s1), (_, q0, q1) = bag.segments
    passes = loops_of(recorder.reports)
    assert len(passes) == 2, [len(p) for p in passes]
    for i, reports in enumerate(passes):
        assert all(bag.start <= r["stamp"] <= bag.end for r in reports)
        # A full window inside the speech / inside the silence (the 1 s window straddles the change).
        on_speech = [r for r in reports if s0 + WINDOW_S <= r["stamp"] <= s1]
        on_silence = [r for r in reports if q0 + WINDOW_S + 0.1 <= r["stamp"] <= q1]
        assert len(on_speech) >= 2 and len(on_silence) >= 2, (i, [(r["stamp"], r["mask_fraction"]) for r in reports])
        # The tagger may miss speech in the odd window; most speech frames must show the speaker.
        heard = [r for r in on_speech if r["mask_fraction"] > 0.01 and r["labels"] and r["labels"][0][0] == "person"]
        assert len(heard) >= 0.75 * len(on_speech), (i, [(r["stamp"], r["mask_fraction"], r["labels"]) for r in on_speech])
        assert all(r["mask_fraction"] == 0.0 and r["silent"] for r in on_silence), (i, on_silence)
        # The audio of the bag covers the windows: frames were not processed as silence for lack of audio.
        assert min(r["window"]["audio_coverage"] for r in on_speech) >= 0.9
    # The loop was detected once (the clock jump), not per frame, and the node went on.
    assert log.count("jumped back") == 1, log[-3000:]
    assert "out_of_order_stamp" not in log
    # mask/camera_info pairs with the mask: same header, the camera's intrinsics.
    mask_stamps = {stamp for stamp, _ in recorder.mask_headers}
    assert recorder.camera_infos and all(stamp_seconds(m.header.stamp) in mask_stamps for m in recorder.camera_infos)
    # One detection per sounding object: the speaker when a mask shows her, nothing on silence.
    assert len(recorder.detections) == len(recorder.reports)
    for array, report in zip(recorder.detections, recorder.reports):
        assert stamp_seconds(array.header.stamp) == report["stamp"]
        classes = [d.results[0].hypothesis.class_id for d in array.detections]
        assert (len(classes) > 0) == (report["mask_fraction"] > 0), (classes, report["mask_fraction"])
        assert all(c == "person" for c in classes)
        for d in array.detections:
            assert 0 < d.bbox.size_x <= 320 and 0 < d.bbox.size_y <= 375 and 0 < d.results[0].hypothesis.score <= 1
    info = recorder.camera_infos[-1]
    assert (info.width, info.height) == (320, 375) and info.k[0] == 320.0


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_written_bag_holds_what_the_drivers_send(tmp_path, asset, storage):
    """No DDS: the bag's topics, types, definitions, counts and timing, read back with rosbags."""
    asset("grace_hopper")
    asset("speech")
    from rclpy.serialization import deserialize_message
    from rosbags.highlevel import AnyReader

    from avs_ros.bag import write_scene_bag

    with msg_fixtures.activated("ros_drivers") as msgs:
        scene = write_scene_bag(tmp_path / "bag", segments=(("speech", 1.0, 2.0), (None, 0.5)), storage=storage, fps=10.0)
        with AnyReader([scene.path]) as reader:
            conns = {c.topic: c for c in reader.connections}
            audio = [(t, deserialize_message(bytes(raw), msgs.AudioDataStamped))
                     for c, t, raw in reader.messages([conns["/audio/audio_stamped"]])]
            infos = [deserialize_message(bytes(raw), msgs.AudioInfo) for c, t, raw in reader.messages([conns["/audio/audio_info"]])]
    assert {t: c.msgtype for t, c in conns.items()} == {
        "/camera/image_raw": "sensor_msgs/msg/Image", "/camera/camera_info": "sensor_msgs/msg/CameraInfo",
        "/audio/audio_stamped": "audio_common_msgs/msg/AudioDataStamped", "/audio/audio_info": "audio_common_msgs/msg/AudioInfo"}
    assert (conns["/camera/image_raw"].msgcount, len(audio), len(infos)) == (15, 15, 1)
    # The definition stored in the bag is the released one (the fixture's .msg file).
    released = (msg_fixtures.ROOT / "test/fixtures/msgs/ros_drivers/audio_common_msgs/msg/AudioInfo.msg").read_text()
    fields = [line for line in released.splitlines() if line and not line.startswith("#")]
    assert all(field in conns["/audio/audio_info"].msgdef.data for field in fields)
    # Chunk k: 0.1 s of S16LE samples stamped with its first sample, logged when it is complete.
    for k, (log_ns, msg) in enumerate(audio):
        first = scene.start + k * 0.1
        assert abs(stamp_seconds(msg.header.stamp) - first) < 1e-6 and abs(log_ns * 1e-9 - (first + 0.1)) < 1e-6
        assert len(msg.audio.data) == 1600 * 2
    assert (infos[0].sample_rate, infos[0].channels, infos[0].sample_format, infos[0].coding_format) == (16000, 1, "S16LE", "wave")
    silence = np.frombuffer(bytes(audio[-1][1].audio.data), "<i2")
    speech = np.concatenate([np.frombuffer(bytes(m.audio.data), "<i2") for _, m in audio[:10]])
    assert not silence.any() and np.abs(speech).max() > 1000
