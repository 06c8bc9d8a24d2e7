"""avs_node as a managed lifecycle node (autostart:=false): driven through its change_state service.

One node process goes through: a configure that fails half-way (a file the pipeline
needs is missing; its publishers were already created) → the file appears →
configure again (exactly one publisher per output: the failed attempt was rolled
back) → activate → masks → deactivate (inputs unsubscribed, worker stopped) →
activate again (masks flow again) → deactivate → cleanup (publishers gone). A second
test drives the node in this process to see what cleanup releases: the model objects
are garbage-collected and the cue provider's child process exits.
"""
from __future__ import annotations

import gc
import os
import shutil
import time
import weakref

from ros_harness import Client, start_process, unique_domain_id, wait_until

from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402

from avs_core.sound_sources import DEFAULT_PATH as SOUND_SOURCES  # noqa: E402
from avs_ros.params import load_config  # noqa: E402
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
        assert transition(Transition.TRANSITION_CLEANUP) and state() == State.PRIMARY_STATE_UNCONFIGURED
        assert wait_until(lambda: node.count_publishers(f"{NS}/mask") == 0, 10)
        assert proc.alive()
    finally:
        client.close()
        rc = proc.stop()
    assert rc == 0 and "Traceback" not in proc.log(), proc.log()[-3000:]


def test_cleanup_frees_the_models_and_ends_the_cue_process(asset):
    from test_ros_qos import NodeUnderTest

    for name in ("efficientat_mn04", "deeplabv3_voc"):
        asset(name)
    cfg = load_config()
    cfg["cues"] = dict(cfg["cues"], process=True)  # the cue backend in a child process
    under_test = NodeUnderTest(unique_domain_id(), cfg, cue_refresh_s=1.0)
    node = under_test.node
    try:
        under_test.start()
        child = node._refresher.provider.pid
        assert child is not None and os.path.exists(f"/proc/{child}")
        pipeline, segmenter = weakref.ref(node.pipeline), weakref.ref(node.pipeline.segmenter)
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        gc.collect()
        assert pipeline() is None and segmenter() is None, gc.get_referrers(pipeline() or segmenter())[:5]
        assert wait_until(lambda: not os.path.exists(f"/proc/{child}"), 15), "cue process still running after cleanup"
        # Configure again after cleanup: a fresh model, masks would flow as before.
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS and node.pipeline is not None
    finally:
        under_test.close()


def test_reactivation_is_refused_while_the_old_worker_is_still_in_the_model(monkeypatch):
    import threading

    from test_ros_qos import NS as QNS
    from test_ros_qos import RELIABLE, NodeUnderTest, StubPipeline, frame_msg

    import avs_ros.avs_node as avs_node
    from avs_core.pipeline import AVSPipeline
    from sensor_msgs.msg import Image

    gate = threading.Event()
    stub = StubPipeline(gate)
    monkeypatch.setattr(AVSPipeline, "from_config", classmethod(lambda cls, cfg=None: stub))
    monkeypatch.setattr(avs_node, "WORKER_JOIN_S", 0.5)  # how long deactivate waits for the worker
    domain = unique_domain_id()
    under_test = NodeUnderTest(domain, **{"audio.wait_s": 0.0})
    client = Client(domain)
    node = under_test.node
    try:
        under_test.start()
        pub = client.node.create_publisher(Image, f"{QNS}/image", RELIABLE)

        def now() -> float:
            return client.node.get_clock().now().nanoseconds * 1e-9

        def feed_until(done) -> bool:
            """Publish fresh frames until ``done()`` (discovery may lag behind the first ones)."""
            for _ in range(40):
                pub.publish(frame_msg(now(), "cam"))
                if wait_until(done, 0.5):
                    return True
            return False

        assert feed_until(lambda: stub.calls >= 1)  # the worker is inside the model now
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert node.stream.alive, "the worker cannot be interrupted inside the model"
        # A second worker on the same model (one TFLite interpreter) must not start.
        assert node.trigger_activate() == TransitionCallbackReturn.FAILURE
        gate.set()
        assert wait_until(lambda: not node.stream.alive, 10)
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        activated = now()
        assert feed_until(lambda: any(t > activated for t in stub.stamps)), "no new frame after the reactivation"
    finally:
        gate.set()
        client.close()
        under_test.close()
