"""avs_node over real DDS: a sound whose source is not in view is named on the ``cues`` topic.

A real dog recording plays while the camera shows a cat: every report whose
window holds a full second of the recording has an empty mask, and most of
them name a dog sound in ``heard_not_visible``.
"""
from __future__ import annotations

import time

import pytest
from ros_harness import Client, start_process, unique_domain_id, wait_until

from avs_core.ontology import Ontology
from avs_ros.playback import Player, still_scene  # noqa: E402
from avs_ros.recorder import Recorder  # noqa: E402

NS = "/hnv"
IMAGE, AUDIO = "/cam/image_raw", "/mic/audio"
BARK = "real_sounds/dog_bark_esc10_3-155312-A.ogg"


@pytest.fixture(scope="module")
def system(tmp_path_factory, asset):
    for name in ("efficientat_mn04", "deeplabv3_voc", "yolox_nano", "cat", BARK, "audioset_ontology"):
        asset(name)
    tmp = tmp_path_factory.mktemp("avs_node_hnv")
    domain = unique_domain_id()
    ros_args = ["-r", f"__ns:={NS}", "-r", f"image:={IMAGE}", "-r", f"audio:={AUDIO}",
                "-p", "qos:=reliable", "-p", "pipeline.device:=cpu", "-p", "audio.wait_s:=0.3"]
    proc = start_process("node", tmp / "node.log", domain, ros_args, ready="active: subscribed")
    client = Client(domain)
    recorder = Recorder(client.node, prefix=NS, overlay_dir=tmp / "overlays")
    player = Player(client.node, image_topic=IMAGE, audio_topic=AUDIO, reliable=True)
    assert wait_until(lambda: player.image_pub.get_subscription_count() > 0
                      and client.node.count_publishers(f"{NS}/cues") > 0, 20), "node and test did not discover each other"
    yield proc, client, recorder, player
    client.close()
    assert proc.stop() == 0, proc.log()[-2000:]
    assert "Traceback" not in proc.log(), proc.log()[-4000:]


def test_bark_without_a_dog_is_named_on_the_cues_topic(system, asset):
    proc, _, recorder, player = system
    player.play(still_scene("cat", BARK, fps=3.0), 5.0)
    sent = list(player.sent_stamps)
    full = lambda: [m for m in recorder.masks() if m.report and m.stamp >= sent[0] + 1.2]  # noqa: E731
    assert wait_until(lambda: len(full()) >= 3, 60, period=0.5), (len(recorder.masks()), proc.log()[-2000:])
    time.sleep(1.0)
    onto = Ontology.load(asset("audioset_ontology"))
    dog_sounds = set(onto.subtree("Dog")) | set(onto.subtree("Canidae, dogs, wolves")) | onto.ancestors("Dog")
    reports = [m.report for m in full()]
    for m in full():
        assert not m.mask.any() and m.report["labels"] == [], m.report
    # A window that falls between two barks may hear nothing (or the tagger's odd "Speech", with no
    # person in view either); most name the dog.
    named = [r for r in reports if set(r["heard_not_visible"]) & dog_sounds]
    assert len(named) * 2 > len(reports), [(r["window"], r["heard_not_visible"]) for r in reports]
