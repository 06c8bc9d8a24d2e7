"""avs_node as a managed lifecycle node (autostart:=false): driven through its change_state service."""
from __future__ import annotations

from ros_harness import Client, start_process, unique_domain_id, wait_until

from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402


def test_configure_activate_deactivate_cleanup(tmp_path, asset):
    for name in ("efficientat_mn04", "deeplabv3_voc"):
        asset(name)
    domain = unique_domain_id()
    proc = start_process("node", tmp_path / "node.log", domain,
                         ["-r", "__ns:=/lc", "-p", "autostart:=false", "-p", "pipeline.device:=cpu"],
                         ready="waiting for lifecycle transitions", timeout=120)
    client = Client(domain)
    node = client.node
    change = node.create_client(ChangeState, "/lc/avs_node/change_state")
    get = node.create_client(GetState, "/lc/avs_node/get_state")

    def transition(tid: int) -> bool:
        return client.call(change, ChangeState.Request(transition=Transition(id=tid)), timeout=120).success

    def state() -> int:
        return client.call(get, GetState.Request()).current_state.id

    try:
        assert wait_until(lambda: change.service_is_ready(), 60)
        assert state() == State.PRIMARY_STATE_UNCONFIGURED
        assert node.count_subscribers("/lc/image") == 0
        assert transition(Transition.TRANSITION_CONFIGURE) and state() == State.PRIMARY_STATE_INACTIVE
        assert node.count_subscribers("/lc/image") == 0, "inputs are subscribed only while active"
        assert transition(Transition.TRANSITION_ACTIVATE) and state() == State.PRIMARY_STATE_ACTIVE
        assert wait_until(lambda: node.count_subscribers("/lc/image") == 1 and node.count_subscribers("/lc/audio") == 1, 10)
        assert transition(Transition.TRANSITION_DEACTIVATE) and state() == State.PRIMARY_STATE_INACTIVE
        assert wait_until(lambda: node.count_subscribers("/lc/image") == 0, 10)
        assert transition(Transition.TRANSITION_CLEANUP) and state() == State.PRIMARY_STATE_UNCONFIGURED
        assert proc.alive()
    finally:
        client.close()
        rc = proc.stop()
    assert rc == 0 and "Traceback" not in proc.log(), proc.log()[-3000:]
