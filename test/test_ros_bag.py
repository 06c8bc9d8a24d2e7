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
    assert 1 <= log.count("jumped back") <= 2, log[-3000:]
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
