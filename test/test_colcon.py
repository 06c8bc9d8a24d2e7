"""Build avs_ros with colcon the way a robot does, then start the *installed* node.

The workspace is a temporary copy of the sources (ws/src/avs_ros); colcon runs with this
venv's Python (`python -m colcon build`, the README's robot recipe), so the installed
entry points carry its shebang. The node is started from install/avs_ros/lib/avs_ros with
the environment of `. install/setup.sh` and the config installed in share/avs_ros/config,
as `ros2 launch avs_ros avs.launch.py` would start it.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_package
from test_packaging import copy_sources

require_package("colcon_core", "colcon-core from requirements-ros.txt")
require_package("ament_package", "ros-ament-package from requirements-ros.txt (ament_python build type)")
from ros_harness import Client, unique_domain_id, wait_until  # noqa: E402

from avs_ros.dds import apply_profile  # noqa: E402

NS = "/avs"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    ws = tmp_path_factory.mktemp("colcon_ws")
    copy_sources(ws / "src" / "avs_ros")
    build = subprocess.run([sys.executable, "-m", "colcon", "--log-base", str(ws / "log"), "build",
                            "--base-paths", str(ws / "src"), "--build-base", str(ws / "build"),
                            "--install-base", str(ws / "install")],
                           cwd=ws, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, f"colcon build failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}"
    return ws


def sourced_env(ws: Path, **extra: str) -> dict[str, str]:
    """os.environ after `. install/setup.sh` (colcon's own script, run by sh)."""
    out = subprocess.run(["sh", "-c", f". {ws / 'install' / 'setup.sh'} && env -0"], capture_output=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert out.returncode == 0, out.stderr
    env = dict(item.split("=", 1) for item in out.stdout.decode().split("\0") if "=" in item)
    env.update(extra)
    return env


def test_install_layout(workspace):
    install = workspace / "install" / "avs_ros"
    share = install / "share" / "avs_ros"
    assert (share / "launch" / "avs.launch.py").is_file()
    for name in ("avs.yaml", "pipeline.yaml", "sound_sources.yaml", "fastdds.xml"):
        assert (share / "config" / name).read_bytes() == (workspace / "src" / "avs_ros" / "config" / name).read_bytes()
    assert (share / "package.xml").is_file()
    assert (install.parent.parent / "install" / "avs_ros" / "share" / "ament_index" / "resource_index" / "packages" / "avs_ros").is_file()
    for exe in ("avs_node", "mic_node", "avs"):
        script = install / "lib" / "avs_ros" / exe
        assert os.access(script, os.X_OK)
        assert script.read_text().splitlines()[0] == f"#!{sys.executable}"  # the venv that ran colcon


def test_installed_package_finds_its_own_config_and_manifest(workspace):
    code = "import avs_core, avs_config, avs_core.config as c; print(avs_core.__file__); print(c.CONFIG_DIR)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=sourced_env(workspace), cwd=workspace)
    assert out.returncode == 0, out.stderr
    site = next((workspace / "install" / "avs_ros" / "lib").glob("python3*/site-packages"))
    module, config_dir = out.stdout.splitlines()
    assert Path(module).is_relative_to(site) and Path(config_dir) == site / "avs_config"


def test_installed_avs_node_advertises_mask(workspace, tmp_path):
    domain = unique_domain_id()
    env = sourced_env(workspace, ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0")
    apply_profile(env)
    node = workspace / "install" / "avs_ros" / "lib" / "avs_ros" / "avs_node"
    config = workspace / "install" / "avs_ros" / "share" / "avs_ros" / "config" / "avs.yaml"
    log = tmp_path / "node.log"
    with log.open("w") as fh:
        proc = subprocess.Popen([str(node), "--config", str(config), "--ros-args", "-r", f"__ns:={NS}",
                                 "-p", "pipeline.device:=cpu", "-p", "cue_refresh_s:=0.0"],
                                stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    client = Client(domain)
    try:
        def advertised():
            return dict(client.node.get_topic_names_and_types()).get(f"{NS}/mask") == ["sensor_msgs/msg/Image"]

        ok = wait_until(lambda: advertised() or proc.poll() is not None, timeout=240)
        assert ok and proc.poll() is None, f"node exited or never advertised {NS}/mask; log:\n{log.read_text()[-3000:]}"
        assert advertised()
    finally:
        client.close()
        proc.send_signal(2)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
