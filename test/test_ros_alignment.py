"""Time alignment over real DDS: a mask reflects the audio of the second before its frame, no more, no less.

The camera shows a person the whole time; the microphone hears quiet noise, then speech
from a known stamp on. Masks whose audio window ends before speech starts must be empty;
the first mask whose window holds at least 0.5 s of speech must show the person. A node
that paired frames with audio from the wrong time (late or early) fails one of the two.
Only the node's public topics are used (mask, cues report with the window it used).
"""
from __future__ import annotations

import numpy as np
import pytest
from ros_harness import recorder_and_player, start_node, wait_until

from avs_core import assets  # noqa: E402
from avs_core.audio.frontend import read_audio, resample, to_mono_float  # noqa: E402
from avs_core.image import read_image  # noqa: E402
from avs_ros.playback import Scene  # noqa: E402

NS = "/align"
IMAGE, AUDIO = "/align_cam/image_raw", "/align_mic/audio"
SR = 16000
SPEECH_AT = 2.9  # s after the first frame: frames come every 0.5 s, so windows hold 0.1, 0.6, 1.0 s of speech
CAMERA_HZ = 2.0
SECONDS = 5.5


def _scene() -> Scene:
    samples, sr = read_audio(assets.resolve("speech"))
    speech = np.asarray(resample(to_mono_float(samples, sr), sr, SR), np.float32)[2 * SR:]  # talking from 2 s in
    n = int((SECONDS + 1) * SR)
    audio = np.random.default_rng(0).normal(0, 0.01, n).astype(np.float32)  # -40 dBFS: above the silence gate
    start = int(SPEECH_AT * SR)
    audio[start:] += speech[: n - start]
    return Scene("person+late_speech", [read_image(assets.resolve("grace_hopper"))], CAMERA_HZ, audio, SR)


@pytest.mark.timeout(600)
def test_first_mask_with_half_a_second_of_speech_is_the_first_non_empty_one(tmp_path):
    ros_args = ["-r", f"__ns:={NS}", "-r", f"image:={IMAGE}", "-r", f"audio:={AUDIO}", "-p", "qos:=reliable",
                "-p", "pipeline.device:=cpu", "-p", "audio.wait_s:=0.5", "-p", "cue_refresh_s:=0.0"]
    proc, client = start_node(tmp_path / "node.log", ros_args)
    try:
        recorder, player = recorder_and_player(client, NS, IMAGE, AUDIO, 30)
        player.play(_scene(), SECONDS, camera_hz=CAMERA_HZ)
        sent = list(player.sent_stamps)
        t_speech = sent[0] + SPEECH_AT

        def all_back():
            got = {m.stamp for m in recorder.masks() if m.report is not None}
            diag = recorder.last_diagnostics()
            return diag and int(diag["frames_processed"]) <= len(got) and diag["queue_depth"] == "0"

        assert wait_until(all_back, 60, period=0.5), recorder.last_diagnostics()
        masks = [m for m in recorder.masks() if m.stamp in set(sent) and m.report is not None]
    finally:
        client.close()
        proc.stop()

    def speech_s(m) -> float:
        w = m.report["window"]
        return max(0.0, w["t_end"] - max(w["t_start"], t_speech))

    summary = [(round(m.stamp - sent[0], 2), round(speech_s(m), 2), bool(m.mask.any())) for m in masks]
    before = [m for m in masks if m.report["window"]["t_end"] <= t_speech]
    heard = [m for m in masks if speech_s(m) >= 0.5]
    assert len(before) >= 2 and heard, summary
    assert not any(m.mask.any() for m in before), summary
    first = min(heard, key=lambda m: m.stamp)
    assert first.mask.mean() > 0.2, summary
    print("frame time, speech in window (s), mask non-empty:", summary)
