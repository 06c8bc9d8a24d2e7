"""avs_node as a managed lifecycle node (autostart:=false): driven through its change_state service.

One node process goes through: a configure that fails half-way (a file the pipeline
needs is missing; its publishers were already created) → the file appears →
configure again (exactly one publisher per output: the failed attempt was rolled
back) → activate → masks → deactivate (inputs unsubscribed, worker stopped) →
activate again (masks flow again) → deactivate → cleanup (the model's memory is
returned).
"""
from __future__ import annotations

import shutil
import time

from ros_harness import Client, start_process, unique_domain_id, wait_until

from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402

from avs_core.sound_sources import DEFAULT_PATH as SOUND_SOURCES  # noqa: E402
from avs_ros.playback import Player, still_scene  # noqa: E402
from avs_ros.recorder import Recorder  # noqa: E402

NS = "/lc"


def test_lifecycle_rollback_reactivation_and_cleanup(tmp_path, asset):
    for name in ("efficientat_mn04", "deeplabv3_voc", "grace_hopper", "speech"):
        asset(name)
    sources = tmp_path / "late" / "sound_sources.yaml"  # absent at the first configure
    domain = unique_domain_id()
    proc = start_process("node", tmp_path / "node.log", domain,
                         ["-r", f"__ns:={NS}", "-p", "autostart:=false", "-p", "pipeline.device:=cpu",
                          "-p", f"pipeline.sound_sources:={sources}", "-p", "cue_refresh_s:=0.0",
                          "-p", "qos:=reliable"],
                         ready="waiting for lifecycle transitions", timeout=120)
    client = Client(domain)
    node = client.node
    change = node.create_client(ChangeState, f"{NS}/avs_node/change_state")
    get = node.create_client(GetState, f"{NS}/avs_node/get_state")
    recorder = Recorder(node, prefix=NS)
    player = Player(node, image_topic=f"{NS}/image", audio_topic=f"{NS}/audio", reliable=True)
    scene = still_scene("grace_hopper", "speech", fps=4.0)

    def transition(tid: int) -> bool:
        return client.call(change, ChangeState.Request(transition=Transition(id=tid)), timeout=180).success

    def state() -> int:
        return client.call(get, GetState.Request()).current_state.id

    def masks_flow() -> bool:
        """Play 3 s of speech + photo; True when masks for the frames just sent come back."""
        start = len(player.sent_stamps)
        player.play(scene, 3.0)
        sent = set(player.sent_stamps[start:])
        return wait_until(lambda: any(m.stamp in sent for m in recorder.masks()), 30)

    try:
        assert wait_until(lambda: change.service_is_ready(), 60)
        assert state() == State.PRIMARY_STATE_UNCONFIGURED
        assert not transition(Transition.TRANSITION_CONFIGURE), "configure must fail while the file is missing"
        assert state() == State.PRIMARY_STATE_UNCONFIGURED
        assert "configure failed" in proc.log() and str(sources) in proc.log()
        assert wait_until(lambda: node.count_publishers(f"{NS}/mask") == 0, 10), "failed configure left publishers behind"

        sources.parent.mkdir()
        shutil.copy(SOUND_SOURCES, sources)
        assert transition(Transition.TRANSITION_CONFIGURE) and state() == State.PRIMARY_STATE_INACTIVE
        for output in ("mask", "heatmap", "overlay", "cues"):
            assert wait_until(lambda: node.count_publishers(f"{NS}/{output}") == 1, 10), output
        time.sleep(1.0)  # discovery: a leftover publisher from the failed attempt would show up by now
        assert node.count_publishers(f"{NS}/mask") == 1, "duplicate mask publisher after the retried configure"
        assert node.count_subscribers(f"{NS}/image") == 0, "inputs are subscribed only while active"
        configured_rss = proc.rss_mb()

        assert transition(Transition.TRANSITION_ACTIVATE) and state() == State.PRIMARY_STATE_ACTIVE
        assert wait_until(lambda: node.count_subscribers(f"{NS}/image") == 1 and node.count_subscribers(f"{NS}/audio") == 1, 10)
        assert masks_flow(), proc.log()[-3000:]
        assert transition(Transition.TRANSITION_DEACTIVATE) and state() == State.PRIMARY_STATE_INACTIVE
        assert wait_until(lambda: node.count_subscribers(f"{NS}/image") == 0, 10)

        assert transition(Transition.TRANSITION_ACTIVATE) and state() == State.PRIMARY_STATE_ACTIVE
        assert wait_until(lambda: node.count_subscribers(f"{NS}/image") == 1, 10)
        assert masks_flow(), "no masks after deactivate -> activate: " + proc.log()[-3000:]
        assert node.count_publishers(f"{NS}/mask") == 1

        assert transition(Transition.TRANSITION_DEACTIVATE)
        active_rss = proc.rss_mb()
        assert transition(Transition.TRANSITION_CLEANUP) and state() == State.PRIMARY_STATE_UNCONFIGURED
        assert wait_until(lambda: node.count_publishers(f"{NS}/mask") == 0, 10)
        # The models (tagger + DeepLab + YOLOX, well over 50 MB) are released.
        assert wait_until(lambda: proc.rss_mb() < min(configured_rss, active_rss) - 50, 10), \
            (configured_rss, active_rss, proc.rss_mb())
        assert proc.alive()
    finally:
        client.close()
        rc = proc.stop()
    assert rc == 0 and "Traceback" not in proc.log(), proc.log()[-3000:]
