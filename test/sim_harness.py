"""Helpers of the sim-time DDS tests: avs_node arguments for the driver topic names, and ``avs play`` in a child."""
from __future__ import annotations

import subprocess
import sys

import msg_fixtures

from avs_ros.processes import ros_env

NS = "/avs"


def node_args(audio_topic: str, transport: str, sim_time: bool = True) -> list[str]:
    """--ros-args of an avs_node in namespace NS reading the topics a camera driver and an audio driver publish."""
    return ["-r", f"__ns:={NS}", "-r", "image:=/camera/image_raw", "-r", "camera_info:=/camera/camera_info",
            "-r", f"audio:={audio_topic}", "-r", "audio_info:=/audio/audio_info",
            "-p", f"use_sim_time:={str(sim_time).lower()}", "-p", f"audio.transport:={transport}",
            "-p", "pipeline.device:=cpu", "-p", "cue_refresh_s:=0.0", "-p", "qos:=reliable", "-p", "audio.wait_s:=0.5",
            "-p", "warn_interval_s:=30.0"]


def play(bag, domain: int, env: dict, loops: int, log_path) -> subprocess.CompletedProcess:
    """``avs play BAG --loop N`` in a child process with ``env`` (the fixture message packages); blocks."""
    cmd = [sys.executable, "-m", "avs_ros.cli", "play", str(bag), "--loop", str(loops)]
    with open(log_path, "w") as log:
        return subprocess.run(cmd, env=ros_env(domain, **env), stdout=log, stderr=subprocess.STDOUT, timeout=300,
                              cwd=msg_fixtures.ROOT)
