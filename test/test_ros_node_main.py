"""Node entry point: own options vs ROS arguments, and no import cycle with the ``avs`` CLI."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import require_package

require_package("rclpy", "ROS 2 Python packages (requirements-ros.txt)")

from avs_ros.node_main import node_main  # noqa: E402
from avs_ros.params import DEFAULT_CONFIG  # noqa: E402


def test_own_options_are_parsed_around_ros_argument_blocks(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("/**:\n  ros__parameters: {}\n")
    calls = []
    argv = ["--ros-args", "-r", "image:=/cam", "-p", "qos:=reliable", "--", "--config", str(DEFAULT_CONFIG),
            "--params-file", str(params)]
    assert node_main("avs_node", lambda cfg, args: calls.append((cfg, args)) or 0, argv) == 0
    cfg, args = calls[0]
    assert "pipeline" in cfg and "node" in cfg
    # rclpy gets every argument plus a block for the parameters file.
    assert args == [*argv, "--ros-args", "--params-file", str(params)]
    import rclpy

    context = rclpy.Context()
    rclpy.init(args=["avs_node", *args], context=context)
    try:
        assert context.ok()  # rclpy accepted the argument list as a whole
    finally:
        rclpy.shutdown(context=context)


def test_node_modules_and_cli_do_not_import_each_other():
    code = ("import sys, avs_ros.node_main, avs_ros.avs_node, avs_ros.mic_node; "
            "print('avs_ros.cli' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


def test_a_worker_publishing_through_sigint_shutdown_ends_quietly():
    # What a node's worker thread sees on Ctrl-C: rclpy shuts the context down while the thread is
    # still publishing (CI caught the mic node's publisher thread dying with a traceback here).
    import threading
    import time

    import rclpy
    from std_msgs.msg import String

    from avs_ros.node_main import quiet_after_shutdown
    from ros_harness import unique_domain_id

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=unique_domain_id())
    node = rclpy.create_node("worker_under_test", context=context)
    pub = node.create_publisher(String, "chatter", 10)
    attempts, errors, done = [0], [], threading.Event()

    def work():
        try:
            while not done.is_set():
                with quiet_after_shutdown(node):
                    pub.publish(String(data="x"))
                attempts[0] += 1
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    deadline = time.monotonic() + 10
    while attempts[0] < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    rclpy.shutdown(context=context)
    after_shutdown = attempts[0] + 10  # every one of these publishes meets the dead context
    while attempts[0] < after_shutdown and not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    done.set()
    thread.join(10)
    assert errors == [] and attempts[0] >= after_shutdown
    # The dead context really makes publish fail: without the wrapper this is the traceback.
    with pytest.raises(Exception):
        pub.publish(String(data="x"))
    # On a live context a failure is a bug and still raises.
    live = rclpy.Context()
    rclpy.init(context=live, domain_id=unique_domain_id())
    try:
        other = rclpy.create_node("live_node", context=live)
        live_pub = other.create_publisher(String, "chatter", 10)
        with pytest.raises(TypeError):
            with quiet_after_shutdown(other):
                live_pub.publish(42)
    finally:
        rclpy.shutdown(context=live)
