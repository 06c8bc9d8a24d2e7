"""Every audio transport over DDS, against the exact message types robots publish.

For each transport a bag is written in a child process that imports the matching fixture
``audio_common_msgs`` (ros-drivers or mgonzs13, which share the package name), replayed with
``avs play`` in sim time, and consumed by avs_node running with that same environment and
``audio.transport`` set. Per transport the test records how much of each window the audio
covered and the node's latency (its ``cues`` JSON and /diagnostics), and checks that speech
gives masks. A publisher of the wrong type is reported from the graph with the fix.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys

import msg_fixtures
import pytest
from ros_harness import Client, start_process, unique_domain_id, wait_until
from sim_harness import NS, node_args, play

from avs_ros.audio_transport import DRIVER_TOPICS  # noqa: E402
from avs_ros.processes import ros_env  # noqa: E402
from avs_ros.recorder import Recorder  # noqa: E402

SPEECH_S, SILENCE_S = 2.5, 1.5
CASES = [("audio_common_stamped", "ros_drivers"), ("audio_common", "ros_drivers"), ("audio_stamped", "mgonzs13"),
         ("int16", "ros_drivers"), ("float32", "ros_drivers")]
RESULTS: dict[str, dict] = {}


def make_bag(path, transport: str, variant: str, domain: int, sample_rate: int = 16000) -> None:
    cmd = [sys.executable, "-m", "avs_ros.cli", "make-bag", str(path), "--transport", transport,
           "--segments", f"speech:{SPEECH_S}:2", f"silence:{SILENCE_S}", "--sample-rate", str(sample_rate)]
    result = subprocess.run(cmd, env=ros_env(domain, **msg_fixtures.env(variant)), capture_output=True, text=True,
                            timeout=300, cwd=msg_fixtures.ROOT)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]


@pytest.fixture(scope="module")
def assets(asset):
    for name in ("efficientat_mn04", "deeplabv3_voc", "grace_hopper", "speech"):
        asset(name)


def play_until_warned(tmp_path, domain: int, env: dict, args: list[str], warning: str, timeout: float):
    """Start the node, replay the bag once and wait for ``warning``, which must leave the node running.

    Returns the node's exit code, its log and the first line with the warning.
    """
    proc = start_process("node", tmp_path / "node.log", domain, args, ready="active: subscribed", **env)
    try:
        play(tmp_path / "bag", domain, env, loops=1, log_path=tmp_path / "play.log")
        assert proc.wait_for(warning, timeout), proc.log()[-3000:]
        assert proc.alive()
    finally:
        rc = proc.stop()
    log = proc.log()
    return rc, log, next(line for line in log.splitlines() if warning in line)


@pytest.mark.parametrize("transport, variant", CASES)
def test_transport_end_to_end(assets, transport, variant, tmp_path):
    domain = unique_domain_id()
    env = msg_fixtures.env(variant)
    make_bag(tmp_path / "bag", transport, variant, domain)
    args = node_args(DRIVER_TOPICS[transport], transport)
    proc = start_process("node", tmp_path / "node.log", domain, args, ready="active: subscribed", **env)
    client = Client(domain)
    try:
        recorder = Recorder(client.node, prefix=NS)
        assert wait_until(lambda: client.node.count_publishers(f"{NS}/mask") > 0, 20)
        result = play(tmp_path / "bag", domain, env, loops=1, log_path=tmp_path / "play.log")
        assert result.returncode == 0, (tmp_path / "play.log").read_text()[-2000:]
        wait_until(lambda: False, 3.0)
    finally:
        client.close()
        rc = proc.stop()
    log = proc.log()
    assert rc == 0 and "Traceback" not in log, log[-4000:]
    assert "bad_audio" not in log and "wrong_type" not in log and "[sample_rate]" not in log, log[-3000:]
    reports = recorder.reports
    # Windows that lie entirely within the bag's audio (the first one starts with the bag).
    inside = [r for r in reports if r["stamp"] >= 1000.0 + 1.0]
    speech = [r for r in inside if r["stamp"] <= 1000.0 + SPEECH_S]
    assert inside and speech, [r["stamp"] for r in reports]
    coverage = [r["window"]["audio_coverage"] for r in inside]
    diag = recorder.last_diagnostics()
    RESULTS[transport] = {
        "frames": len(reports),
        "coverage_median": statistics.median(coverage), "coverage_min": min(coverage),
        "speech_frames_with_mask": f"{sum(r['mask_fraction'] > 0.01 for r in speech)}/{len(speech)}",
        "latency_p50_ms": diag.get("latency_p50_ms"), "latency_p95_ms": diag.get("latency_p95_ms"),
    }
    (tmp_path / "result.json").write_text(json.dumps(RESULTS[transport]))
    print(f"\n[transport {transport} ({variant})] {json.dumps(RESULTS[transport])}")
    # Stamped transports place audio exactly; unstamped ones by receipt on the (sim) clock.
    assert statistics.median(coverage) >= 0.9, RESULTS[transport]
    assert min(coverage) >= (0.9 if transport in ("audio_common_stamped", "audio_stamped") else 0.5), RESULTS[transport]
    assert any(r["mask_fraction"] > 0.01 for r in speech), RESULTS[transport]


def test_wrong_type_on_the_audio_topic_is_reported_with_the_fix(assets, tmp_path):
    """The launch default of earlier releases: unstamped AudioData where AudioDataStamped is expected."""
    domain = unique_domain_id()
    env = msg_fixtures.env("ros_drivers")
    make_bag(tmp_path / "bag", "audio_common", "ros_drivers", domain)
    # The node expects AudioDataStamped on /audio/audio, where the driver publishes AudioData.
    args = node_args(DRIVER_TOPICS["audio_common"], "audio_common_stamped") + ["-p", "stall_timeout_s:=1.0"]
    rc, log, line = play_until_warned(tmp_path, domain, env, args, "[wrong_type:audio]", 30)
    assert "audio_common_msgs/msg/AudioData " in line and "audio_common_msgs/msg/AudioDataStamped" in line, line
    assert "audio.transport:=audio_common" in line, line
    assert log.count("[wrong_type:audio]") == 1, "the warning is rate-limited"  # warn_interval_s is 30 s
    assert "qos_mismatch" not in log and "silent:/audio/audio" not in log, "a type mismatch is not a QoS problem"
    assert rc == 0 and "Traceback" not in log


@pytest.mark.parametrize("transport", ["float32", "int16"])
def test_declared_rate_44k1_vs_48k_is_caught(assets, transport, tmp_path):
    """MultiArray audio carries no rate: 44.1 kHz audio with audio.sample_rate 48000 (2 % apart at most) is reported."""
    domain = unique_domain_id()
    env = msg_fixtures.env("ros_drivers")
    make_bag(tmp_path / "bag", transport, "ros_drivers", domain, sample_rate=44100)
    args = node_args(DRIVER_TOPICS[transport], transport) + ["-p", "audio.sample_rate:=48000"]
    rc, log, line = play_until_warned(tmp_path, domain, env, args, "[sample_rate]", 10)
    measured = float(line.split("at ~")[1].split(" ")[0])
    assert abs(measured - 44100) / 44100 < 0.02, line  # the node measured the real rate
    assert "audio.sample_rate is 48000" in line and log.count("[sample_rate]") == 1
    assert rc == 0 and "Traceback" not in log


@pytest.mark.parametrize("transport", ["audio_common_stamped", "audio_common"])
def test_live_ros_drivers_audio_on_the_system_clock(assets, transport, tmp_path):
    """No sim time: a live camera + ros-drivers microphone (stamped, then unstamped) published from this process."""
    from avs_ros.playback import Player, still_scene

    domain = unique_domain_id()
    args = node_args(DRIVER_TOPICS[transport], transport, sim_time=False)
    proc = start_process("node", tmp_path / "node.log", domain, args, ready="active: subscribed", **msg_fixtures.env("ros_drivers"))
    client = Client(domain)
    try:
        with msg_fixtures.activated("ros_drivers"):
            recorder = Recorder(client.node, prefix=NS)
            player = Player(client.node, image_topic="/camera/image_raw", audio_topic=DRIVER_TOPICS[transport],
                            audio_transport=transport, reliable=True)
            # The driver's AudioInfo is latched: it reaches the node once the two have matched.
            assert wait_until(lambda: player.audio_pub.get_subscription_count() > 0
                              and player.info_pub.get_subscription_count() > 0
                              and player.image_pub.get_subscription_count() > 0, 20)
            speech = still_scene("grace_hopper", "speech", width=320)
            speech.audio = speech.audio[2 * 16000:]  # after the room noise at its start
            player.play(speech, 4.0, camera_hz=10.0)
        wait_until(lambda: False, 2.0)
    finally:
        client.close()
        rc = proc.stop()
    log = proc.log()
    assert rc == 0 and "Traceback" not in log and "bad_audio" not in log, log[-3000:]
    reports = recorder.reports
    t0 = player.sent_stamps[0]
    inside = [r for r in reports if r["stamp"] >= t0 + 1.2]
    assert inside, [r["stamp"] - t0 for r in reports]
    coverage = [r["window"]["audio_coverage"] for r in inside]
    diag = recorder.last_diagnostics()
    RESULTS[f"live {transport}"] = {"frames": len(reports), "coverage_median": statistics.median(coverage),
                                    "coverage_min": min(coverage),
                                    "speech_frames_with_mask": f"{sum(r['mask_fraction'] > 0.01 for r in inside)}/{len(inside)}",
                                    "latency_p50_ms": diag.get("latency_p50_ms"), "latency_p95_ms": diag.get("latency_p95_ms")}
    print(f"\n[transport live {transport} (ros_drivers)] {json.dumps(RESULTS[f'live {transport}'])}")
    assert statistics.median(coverage) >= 0.9, RESULTS[f"live {transport}"]
    assert any(r["mask_fraction"] > 0.01 for r in inside)
