"""``avs segment --live``: a stream (here a real photo + real speech muxed into an mp4, played in real
time through PyAV) segmented frame by frame through the StreamProcessor, outputs as an overlay video
and one JSON line per processed frame."""
from __future__ import annotations

import json
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from avs_core.audio.frontend import read_audio, resample, to_mono_float
from avs_core.cli import main as avs_main
from avs_core.image import read_image

FPS, SECONDS, SR = 10, 5, 16000


def mux_still_with_speech(path, photo, speech) -> None:
    """An mp4 of ``photo`` (640 wide) for SECONDS at FPS, with the first SECONDS of ``speech`` as AAC."""
    rgb = read_image(photo)
    rgb = cv2.resize(rgb, (640, int(rgb.shape[0] * 640 / rgb.shape[1]) // 2 * 2), interpolation=cv2.INTER_AREA)
    raw, sr = read_audio(speech)
    mono = np.asarray(resample(to_mono_float(raw, sr), sr, SR), np.float32)[: SECONDS * SR]
    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=FPS)
        video.width, video.height, video.pix_fmt = rgb.shape[1], rgb.shape[0], "yuv420p"
        audio = out.add_stream("aac", rate=SR)
        audio.layout = "mono"
        for i in range(SECONDS * FPS):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        for start in range(0, len(mono), 1024):
            frame = av.AudioFrame.from_ndarray(mono[None, start:start + 1024], format="flt", layout="mono")
            frame.sample_rate, frame.pts = SR, start
            out.mux(audio.encode(frame))
        out.mux(audio.encode())


def test_live_stream_is_segmented_with_real_masks(tmp_path, asset, capsys):
    clip = tmp_path / "person_speaking.mp4"
    mux_still_with_speech(clip, asset("grace_hopper"), asset("speech"))
    for name in ("efficientat_mn04", "deeplabv3_voc"):
        asset(name)
    out = tmp_path / "out"
    assert avs_main(["segment", str(clip), "--live", "--out", str(out), "--device", "cpu"]) == 0
    lines = [json.loads(line) for line in (out / "live.jsonl").read_text().splitlines()]
    assert len(lines) >= 5, capsys.readouterr().out
    # Once most of a window is speech, the person in the photo is the sounding object.
    covered = [e for e in lines if e["audio_coverage"] >= 0.9]
    assert covered and any(e["mask_fraction"] > 0.1 and e["labels"] and e["labels"][0][0] == "person" for e in covered), lines
    video = cv2.VideoCapture(str(out / "live.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == len(lines)
    ok, first = video.read()
    assert ok and first.shape[1] == 640
    assert "frame(s) segmented" in capsys.readouterr().out


@pytest.mark.parametrize("source, message", [
    ("/dev/video99", "cannot open camera /dev/video99"),
    ("file:///nonexistent/stream.mp4", "cannot open file:///nonexistent/stream.mp4"),
])
def test_unusable_live_source_is_a_clear_error(tmp_path, asset, capsys, source, message):
    for name in ("efficientat_mn04", "deeplabv3_voc"):
        asset(name)
    assert avs_main(["segment", source, "--out", str(tmp_path), "--device", "cpu", "--audio", "none"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
