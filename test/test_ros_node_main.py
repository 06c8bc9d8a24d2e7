"""Node entry point: own options vs ROS arguments, and no import cycle with the ``avs`` CLI."""
from __future__ import annotations

import subprocess
import sys

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
