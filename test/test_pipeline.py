"""The zero-shot pipeline on real assets: audio decides what is segmented."""
import json
import subprocess
import sys

import numpy as np
import pytest

from avs_core.audio.frontend import read_audio, to_mono_float
from avs_core.errors import InputError
from avs_core.image import read_image
from avs_core.types import Window

from conftest import white_noise


def window(frame, audio, sr, cues=None):
    return Window(frame=frame, audio=audio, sample_rate=sr, t_start=0.0, t_end=1.0, cues=cues)


@pytest.fixture(scope="module")
def hopper(asset):
    return read_image(asset("grace_hopper"))


def clip(asset, name, start=2):
    samples, sr = read_audio(asset(name))
    mono = to_mono_float(samples, sr)
    return mono[start * sr:(start + 1) * sr], sr


def test_speech_segments_the_person(zero_shot_pipeline, hopper, speech_1s):
    audio, sr = speech_1s
    res = zero_shot_pipeline(window(hopper, audio, sr))
    h, w = hopper.shape[:2]
    assert res.mask.shape == (h, w) and res.heatmap.shape == (h, w)
    assert res.heatmap.dtype == np.float32 and 0 <= res.heatmap.min() and res.heatmap.max() <= 1
    assert not res.silent and res.labels and res.labels[0][0] == "person"
    frac = res.mask.mean()
    assert 0.2 < frac < 0.95, frac
    # The person fills the centre of the portrait; the mask must cover it.
    assert res.mask[h // 3:2 * h // 3, w // 3:2 * w // 3].mean() > 0.8
    # ... and leave the background above her shoulders alone (top corners of the portrait).
    assert res.mask[: h // 8, : w // 8].mean() < 0.05 and res.mask[: h // 8, -(w // 8):].mean() < 0.05
    assert {"prepare", "audio_tagger", "vision_deeplab", "total"} <= set(res.timings_ms)


@pytest.mark.parametrize("kind", ["silence", "white_noise", "typing"])
def test_non_speech_gives_empty_mask_on_person(zero_shot_pipeline, hopper, asset, kind):
    sr = 32000
    if kind == "silence":
        audio = np.zeros(sr, np.float32)
    elif kind == "white_noise":
        audio = white_noise(1.0, sr, rms=0.1)
    else:
        audio, sr = clip(asset, "typing")
    res = zero_shot_pipeline(window(hopper, audio, sr))
    assert not res.mask.any(), res.labels
    assert not res.heatmap.any()
    assert res.silent == (kind == "silence")


@pytest.mark.parametrize("image", ["owl", "parrot", "traffic_0001"])
def test_speech_without_person_gives_empty_mask(zero_shot_pipeline, asset, speech_1s, image):
    frame = read_image(asset(image))
    audio, sr = speech_1s
    res = zero_shot_pipeline(window(frame, audio, sr))
    assert res.mask.shape == frame.shape[:2]
    assert res.mask.mean() < 0.005, (image, res.labels, res.mask.mean())


def test_output_follows_odd_input_sizes(zero_shot_pipeline, hopper, speech_1s):
    import cv2

    audio, sr = speech_1s
    for h, w in [(481, 641), (97, 53), (1, 1)]:
        frame = cv2.resize(hopper, (w, h), interpolation=cv2.INTER_AREA)
        res = zero_shot_pipeline(window(frame, audio, sr))
        assert res.mask.shape == (h, w) and res.heatmap.shape == (h, w)


def test_any_image_layout_and_audio_layout(zero_shot_pipeline, hopper, speech_1s):
    audio, sr = speech_1s
    gray16 = (hopper.mean(axis=2) * 257).astype(np.uint16)
    rgba = np.dstack([hopper, np.full(hopper.shape[:2], 255, np.uint8)])
    stereo_int16 = (np.stack([audio, audio], axis=1) * 32767).astype(np.int16)
    for frame in (gray16, rgba):
        res = zero_shot_pipeline(window(frame, stereo_int16, sr))
        assert res.mask.shape == hopper.shape[:2] and res.mask.any()


class _HalfSegmenter:
    """Heats the left half of whatever frame it gets, as one instance; records the frame sizes."""

    def __init__(self):
        self.sizes = []

    def segment(self, rgb, audio, sample_rate, cues):
        from avs_core.types import Instance, SegmenterOutput

        h, w = rgb.shape[:2]
        self.sizes.append((h, w))
        heat = np.zeros((h, w), np.float32)
        heat[:, : w // 2] = 0.9
        inst = Instance("dog", heat > 0, heat, 0.9, 0.9, 1.0, box=(0.0, 0.0, w / 2, float(h)), source="test")
        return SegmenterOutput(heat, [("dog", 0.9)], instances=[inst])

    def audio_tags(self, audio, sample_rate, k):
        return []


def _half_pipeline(**cfg):
    from avs_core.pipeline import AVSPipeline, pipeline_config

    seg = _HalfSegmenter()
    return AVSPipeline(seg, pipeline_config({"silence_dbfs": None, **cfg})), seg


def test_large_frames_infer_at_max_side_and_answer_at_frame_size():
    pipe, seg = _half_pipeline(max_side=64)
    frame = np.zeros((200, 300, 3), np.uint8)
    res = pipe(window(frame, np.full(16000, 0.1, np.float32), 16000))
    # 300 -> 64 on the long side, 200 * 64 / 300 = 42.67 -> 43 rows.
    assert seg.sizes == [(43, 64)]
    assert res.mask.shape == res.heatmap.shape == (200, 300)
    assert res.mask[:, :140].all() and not res.mask[:, 160:].any()  # the left half, at frame resolution
    inst = res.instances[0]
    assert inst.mask.shape == inst.prob.shape == (200, 300)
    assert inst.box == pytest.approx((0.0, 0.0, 150.0, 200.0))
    # A frame within max_side reaches the model untouched.
    pipe(window(np.zeros((40, 60, 3), np.uint8), np.full(16000, 0.1, np.float32), 16000))
    assert seg.sizes[-1] == (40, 60)


def test_frames_beyond_max_pixels_are_refused_before_inference():
    pipe, seg = _half_pipeline(max_pixels=100 * 100)
    pipe(window(np.zeros((100, 100, 3), np.uint8), np.full(16000, 0.1, np.float32), 16000))
    with pytest.raises(InputError, match="max_pixels"):
        pipe(window(np.zeros((100, 101, 3), np.uint8), np.full(16000, 0.1, np.float32), 16000))
    assert seg.sizes == [(100, 100)]


@pytest.mark.parametrize("key, value", [("max_side", 0), ("max_side", 1.5), ("max_pixels", "big"), ("max_pixels", True)])
def test_resolution_limits_are_validated(key, value):
    from avs_core.errors import ConfigError
    from avs_core.pipeline import pipeline_config

    with pytest.raises(ConfigError, match=key):
        pipeline_config({key: value})


@pytest.mark.parametrize("threads, expected", [({"num_threads": 2, "torch_threads": 1}, 1),
                                               ({"num_threads": 2, "torch_threads": 0}, 2)])
def test_torch_threads_sets_torch_intra_op_threads(tmp_path, threads, expected):
    import torch

    from avs_core.modeling import build_model, load_model_config, save_checkpoint
    from avs_core.pipeline import AVSPipeline

    ckpt = save_checkpoint(build_model(load_model_config("tiny/gavs")), tmp_path / "model.safetensors")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)  # neither value below: the pipeline must set it
        AVSPipeline.from_config({"model": "tiny/gavs", "checkpoint": str(ckpt), "device": "cpu", **threads})
        assert torch.get_num_threads() == expected
    finally:
        torch.set_num_threads(before)


def test_torch_threads_is_validated():
    from avs_core.errors import ConfigError
    from avs_core.pipeline import pipeline_config

    with pytest.raises(ConfigError, match="torch_threads"):
        pipeline_config({"torch_threads": -1})


def test_zero_shot_on_a_large_frame_runs_at_max_side(zero_shot_pipeline, hopper, speech_1s, monkeypatch):
    import cv2

    seen = []
    segment = zero_shot_pipeline.segmenter.segment
    monkeypatch.setattr(zero_shot_pipeline.segmenter, "segment", lambda rgb, *a: seen.append(rgb.shape) or segment(rgb, *a))
    h, w = hopper.shape[0] * 4, hopper.shape[1] * 4
    big = cv2.resize(hopper, (w, h), interpolation=cv2.INTER_LINEAR)
    res = zero_shot_pipeline(window(big, *speech_1s))
    assert max(seen[0][:2]) == zero_shot_pipeline.cfg["max_side"]
    assert res.mask.shape == (h, w)
    assert res.labels[0][0] == "person" and res.mask[h // 3:2 * h // 3, w // 3:2 * w // 3].mean() > 0.8


@pytest.mark.parametrize("audio", [np.array([], np.float32), np.full(16000, np.nan, np.float32),
                                   np.array(["a", "b"]), np.full(16000, np.inf, np.float32)])
def test_bad_audio_raises_input_error(zero_shot_pipeline, hopper, audio):
    with pytest.raises(InputError):
        zero_shot_pipeline(window(hopper, audio, 16000))


@pytest.mark.parametrize("frame", [np.zeros((0, 10, 3), np.uint8), np.zeros((4, 4, 3), np.complex64), "not an image",
                                   np.full((8, 8, 3), np.nan, np.float32)])
def test_bad_frame_raises_input_error(zero_shot_pipeline, frame, speech_1s):
    audio, sr = speech_1s
    with pytest.raises(InputError):
        zero_shot_pipeline(window(frame, audio, sr))


def test_bad_sample_rate_raises_input_error(zero_shot_pipeline, hopper, speech_1s):
    audio, _ = speech_1s
    with pytest.raises(InputError):
        zero_shot_pipeline(window(hopper, audio, 0))


def test_threshold_update_takes_effect(zero_shot_pipeline, hopper, speech_1s):
    audio, sr = speech_1s
    try:
        zero_shot_pipeline.update(audio_threshold=1.0)
        assert not zero_shot_pipeline(window(hopper, audio, sr)).mask.any()
    finally:
        zero_shot_pipeline.update(audio_threshold=0.2)
    assert zero_shot_pipeline(window(hopper, audio, sr)).mask.any()


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "avs_core.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_segment_writes_outputs(asset, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("segment", str(asset("grace_hopper")), "--audio", str(asset("speech")),
                   "--out", str(out), "--max-windows", "2")
    assert proc.returncode == 0, proc.stderr
    import cv2

    mask = cv2.imread(str(out / "grace_hopper_0000_mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255} and (mask == 255).any()
    heat = np.load(out / "grace_hopper_0000_heatmap.npy")
    assert heat.shape == mask.shape and heat.dtype == np.float32
    assert (out / "grace_hopper_0001_overlay.png").is_file() and (out / "grace_hopper_0000_heatmap.png").is_file()
    summary = json.loads((out / "grace_hopper_summary.json").read_text())
    assert len(summary["windows"]) == 2 and summary["windows"][0]["labels"][0][0] == "person"


def test_cli_segment_video_uses_its_own_track(asset, tmp_path):
    proc = run_cli("segment", str(asset("bbb_1s")), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "big_buck_bunny_432_433_summary.json").read_text())
    assert len(summary["windows"]) == 1 and summary["windows"][0]["audio_tags"]


@pytest.mark.parametrize("content", [b"", b"BM\x00\x01garbage"])
def test_cli_corrupt_image_one_line_error(tmp_path, content, asset):
    bad = tmp_path / "bad.bmp"
    bad.write_bytes(content)
    proc = run_cli("segment", str(bad), "--audio", str(asset("speech")), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_cli_corrupt_wav_one_line_error(tmp_path, asset):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    proc = run_cli("segment", str(asset("grace_hopper")), "--audio", str(bad), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr


def test_cli_image_without_audio_is_an_error(asset, tmp_path):
    proc = run_cli("segment", str(asset("grace_hopper")), "--out", str(tmp_path))
    assert proc.returncode == 2 and "--audio" in proc.stderr


def test_cli_silence_option(asset, tmp_path):
    proc = run_cli("segment", str(asset("grace_hopper")), "--audio", "none", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "grace_hopper_summary.json").read_text())
    assert summary["windows"][0]["silent"] and summary["windows"][0]["mask_fraction"] == 0


def test_video_windows_stream_frames_in_time_order(asset):
    from avs_core.media import iter_windows, read_video

    frames = read_video(asset("bbb_30s"), max_seconds=3.2).frames
    windows = list(iter_windows(asset("bbb_30s"), None, window_s=1.0, stride_s=1.0, max_windows=3))
    assert [w.t_end for w in windows] == [1.0, 2.0, 3.0]
    for w in windows:
        assert w.audio.shape[0] == w.sample_rate  # one second of the clip's own track
        assert np.array_equal(w.frame, frames[int(round(w.t_end * 24)) - 1])  # the frame shown at t_end (24 fps)


def test_windows_reach_back_over_the_taggers_context(asset):
    from avs_core.media import iter_windows

    track, sr = read_audio(asset("bbb_30s"))
    track = to_mono_float(track, sr)
    windows = list(iter_windows(asset("bbb_30s"), None, window_s=1.0, stride_s=1.0, max_windows=4, span_s=2.5))
    # As far back as the recording goes: 1 s, 2 s, then 2.5 s, each ending at the frame's time.
    assert [round(w.audio.shape[0] / sr, 3) for w in windows] == [1.0, 2.0, 2.5, 2.5]
    assert [(w.t_start, w.t_end) for w in windows] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0)]
    np.testing.assert_array_equal(windows[3].audio, track[int(1.5 * sr):4 * sr])
