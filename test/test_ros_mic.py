"""mic_node for real: PulseAudio null sink whose monitor is the default source, a tone played into it.

PortAudio (via ALSA's pulse plugin) captures the monitor, mic_node publishes it,
this test checks the frequency and the stamps on the topic. Skipped with the
reason when PulseAudio or PortAudio are not installed (Debian: pulseaudio
pulseaudio-utils libportaudio2 libasound2-plugins).
"""
from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
from ros_harness import Client, start_process, unique_domain_id, wait_until

from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from std_msgs.msg import Float32MultiArray  # noqa: E402

from avs_ros import audio_transport as at  # noqa: E402

SR, TONE_HZ = 16000, 880.0
SINK = "avs_test_sink"


def _start_pulse(runtime, env):
    cmd = ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "--log-target=stderr",
           "-L", f"module-native-protocol-unix auth-anonymous=1 socket={runtime}/native",
           "-L", f"module-null-sink sink_name={SINK} rate={SR} channels=1",
           "-L", "module-always-sink"]
    log = open(runtime / "pulse.log", "a")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    ok = wait_until(lambda: subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0, 15, 0.3)
    if ok:
        for args in (["set-default-source", f"{SINK}.monitor"], ["set-default-sink", SINK]):
            subprocess.run(["pactl", *args], env=env, check=True, capture_output=True)
    return proc, ok


@pytest.fixture(scope="module")
def pulse(tmp_path_factory):
    missing = [tool for tool in ("pulseaudio", "pactl", "paplay") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install pulseaudio pulseaudio-utils libportaudio2 libasound2-plugins)")
    try:
        import sounddevice  # noqa: F401
    except OSError as exc:
        pytest.skip(f"sounddevice cannot load PortAudio ({exc}): apt-get install libportaudio2")
    runtime = tmp_path_factory.mktemp("pulse")
    os.chmod(runtime, 0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime), HOME=str(runtime), PULSE_SERVER=f"unix:{runtime}/native")
    proc, ok = _start_pulse(runtime, env)
    if not ok:
        proc.terminate()
        pytest.skip(f"pulseaudio did not start: {(runtime / 'pulse.log').read_text()[-1500:]}")
    state = {"proc": proc, "env": env, "runtime": runtime}
    yield state
    state["proc"].terminate()
    state["proc"].wait(10)


def _tone_file(path, seconds: float = 30.0):
    import soundfile as sf

    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, (0.5 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32), SR, subtype="PCM_16")
    return path


class Capture:
    """Decodes the audio topic exactly like avs_node's float32 path does."""

    def __init__(self, client, topic):
        self.chunks: list[at.AudioChunk] = []
        self.sent: list[float] = []
        self.decoder = at.AudioDecoder("float32", SR)
        qos = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
        self.sub = client.node.create_subscription(Float32MultiArray, topic, self._on_msg, qos)

    def _on_msg(self, msg, info):
        sent = info["source_timestamp"] * 1e-9
        self.chunks.append(self.decoder.decode(msg, sent))
        self.sent.append(sent)


def _peak_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / SR)[np.argmax(spectrum)])


def test_tone_arrives_with_its_frequency_and_increasing_stamps(pulse, tmp_path):
    if at.resolve_transport("auto") != "float32":
        pytest.skip("audio_common_msgs installed: this test decodes the float32 transport")
    domain = unique_domain_id()
    proc = start_process("mic", tmp_path / "mic.log", domain,
                         ["-r", "audio:=/mic/audio", "-p", f"sample_rate:={SR}", "-p", "chunk_s:=0.05", "-p", "reconnect_s:=0.5"],
                         ready="capturing from", timeout=60, **{k: pulse["env"][k] for k in ("XDG_RUNTIME_DIR", "HOME", "PULSE_SERVER")})
    player = subprocess.Popen(["paplay", f"--device={SINK}", str(_tone_file(tmp_path / "tone.wav"))], env=pulse["env"])
    client = Client(domain)
    try:
        capture = Capture(client, "/mic/audio")
        assert wait_until(lambda: len(capture.chunks) >= 60, 30), (len(capture.chunks), proc.log()[-2000:])
        chunks = list(capture.chunks)
        sent = list(capture.sent)
        assert "[device]" not in proc.log()
        # Unplug (PulseAudio gone) and replug: the node logs errors and resumes by itself.
        pulse["proc"].terminate()
        pulse["proc"].wait(10)
        assert proc.wait_for("[device]", 20), proc.log()[-2000:]
        opened = proc.log().count("capturing from")
        pulse["proc"], ok = _start_pulse(pulse["runtime"], pulse["env"])
        assert ok
        player2 = subprocess.Popen(["paplay", f"--device={SINK}", str(tmp_path / "tone.wav")], env=pulse["env"])
        resumed_from = len(capture.chunks)
        assert wait_until(lambda: len(capture.chunks) >= resumed_from + 20, 30), proc.log()[-2000:]
        assert proc.log().count("capturing from") > opened, "the stream was not reopened"
        player2.terminate()
        assert proc.alive()
    finally:
        player.terminate()
        client.close()
        rc = proc.stop()
    assert rc == 0 and "Traceback" not in proc.log(), proc.log()[-3000:]

    samples = np.concatenate([c.samples[:, 0] for c in chunks])
    loud = samples[np.abs(samples) > 0.05]
    assert loud.size > SR // 2, "the tone did not reach the topic"
    assert _peak_hz(samples[-SR:]) == pytest.approx(TONE_HZ, abs=5.0)
    assert np.sqrt(np.mean(samples[-SR:] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.2)
    assert all(c.samples.shape == (int(0.05 * SR), 1) for c in chunks)
    starts = [c.t_first for c in chunks]
    assert all(b > a for a, b in zip(starts, starts[1:])), "chunk stamps must increase monotonically"
    assert all(b > a for a, b in zip(sent, sent[1:]))
    # Stamps advance with the audio: n chunks of 50 ms span about n * 50 ms of stream time.
    assert starts[-1] - starts[0] == pytest.approx((len(chunks) - 1) * 0.05, rel=0.1)
    log = open(tmp_path / "mic.log").read()
    assert log.count("[device]") <= 4, "device errors must be rate-limited"
