"""Direction fusion: only the instance at the sound's direction is masked (avs_core.doa_fusion, pipeline, CLI)."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import soundfile as sf

from conftest import asset_path, require_package
from avs_core.audio.doa import PRESETS, DOAEstimate
from avs_core.doa_fusion import DirectionResult, DirectionStage, array_file_config
from avs_core.errors import ConfigError
from avs_core.geometry import OPTICAL_FROM_BODY, ArrayPose, CameraModel, likelihood, offset_map
from avs_core.pipeline import AVSPipeline, pipeline_config
from avs_core.types import Instance, SegmenterOutput, Window

require_package("pyroomacoustics", "room simulation for DOA tests (requirements.txt)")
import doa_sim  # noqa: E402

W, H, FX = 640, 480, 500.0
CAMERA = CameraModel.from_intrinsics([FX, 0, W / 2, 0, FX, H / 2, 0, 0, 1], W, H)
DOA_CFG = {"mic_array": "respeaker_4mic"}


def column_of(azimuth_deg: float) -> int:
    return int(round(W / 2 + FX * math.tan(math.radians(azimuth_deg))))


def person_at(azimuth_deg: float, half_width: int = 60, label: str = "person") -> Instance:
    """A candidate instance centred on the image column that looks azimuth_deg to the right."""
    c = column_of(azimuth_deg)
    mask = np.zeros((H, W), bool)
    mask[100:460, max(0, c - half_width):c + half_width] = True
    return Instance(label, mask, mask.astype(np.float32) * 0.8, 0.6, 0.75, 0.8,
                    (max(0, c - half_width), 100, c + half_width, 460), "test")


class TwoPeopleSegmenter:
    """Stands in for the zero-shot segmenter: proposes a person at -25 and at +25 degrees."""

    def __init__(self, instances):
        self.instances = instances

    def segment(self, rgb, audio, sample_rate, cues=None):
        heat = np.zeros(rgb.shape[:2], np.float32)
        for inst in self.instances:
            np.maximum(heat, inst.prob, out=heat)
        return SegmenterOutput(heat, [("person", 0.7)], {}, {}, [], list(self.instances))

    def audio_tags(self, audio, sample_rate, k=5):
        return []


def stage(**over) -> DirectionStage:
    return DirectionStage.from_config({**pipeline_config({"doa": DOA_CFG})["doa"], **over})


def flat_board_recording(azimuth: float, rt60: float = 0.3, snr_db: float = 10.0) -> np.ndarray:
    pos = np.array(PRESETS["respeaker_4mic"]["positions"]) @ OPTICAL_FROM_BODY.T
    return doa_sim.simulate(pos, [(doa_sim.load_mono("speech", 1.0, 2.0), azimuth, 0.0)], rt60, snr_db)


@pytest.fixture(scope="module")
def recordings():
    asset_path("speech")
    return {az: flat_board_recording(az) for az in (-25.0, 25.0, 70.0)}


def pipeline_with(instances, **doa) -> AVSPipeline:
    return AVSPipeline(TwoPeopleSegmenter(instances), pipeline_config({"doa": {**DOA_CFG, **doa}, "silence_dbfs": None}))


def window(audio, camera=CAMERA) -> Window:
    return Window(np.full((H, W, 3), 90, np.uint8), audio, doa_sim.SIM_RATE, 0.0, 1.0, camera=camera)


@pytest.mark.parametrize("azimuth,talker", [(25.0, 1), (-25.0, 0)])
def test_pipeline_masks_only_the_person_at_the_sound_direction(recordings, azimuth, talker):
    people = [person_at(-25.0), person_at(25.0)]
    res = pipeline_with(people)(window(recordings[azimuth]))
    assert res.doa.used and res.doa.chosen == [talker]
    assert res.mask[people[talker].mask].all()
    assert not res.mask[people[1 - talker].mask].any()
    # The other person's heatmap fades with its angular disagreement, the talker's is kept.
    assert res.heatmap[people[talker].mask].max() == pytest.approx(0.8, abs=0.01)
    assert res.heatmap[people[1 - talker].mask].max() < 0.1
    assert res.info["doa"]["azimuth_deg"] == pytest.approx(azimuth, abs=10.0)


def test_direction_outside_the_view_gives_an_empty_mask(recordings):
    # 70 degrees right: outside a 65 degree wide view (+-32.6) by more than the 10 degree margin.
    res = pipeline_with([person_at(-25.0), person_at(25.0)])(window(recordings[70.0]))
    assert res.doa.in_view is False and res.doa.used
    assert not res.mask.any()
    assert res.info["doa"]["azimuth_deg"] > 50.0  # says where the sound is


def test_mono_audio_or_no_camera_keeps_todays_behaviour(recordings):
    people = [person_at(-25.0), person_at(25.0)]
    both = people[0].mask | people[1].mask
    mono = pipeline_with(people)(window(recordings[25.0].mean(axis=1)))
    assert not mono.doa.used and mono.doa.reason == "mono audio"
    assert np.array_equal(mono.mask, both)
    no_cam = pipeline_with(people)(window(recordings[25.0], camera=None))
    assert not no_cam.doa.used and "camera" in no_cam.doa.reason and np.array_equal(no_cam.mask, both)
    assert no_cam.info["doa"]["azimuth_deg"] == pytest.approx(25.0, abs=10.0)  # still reported


def test_low_confidence_keeps_todays_behaviour():
    people = [person_at(-25.0), person_at(25.0)]
    pos = np.array(PRESETS["respeaker_4mic"]["positions"]) @ OPTICAL_FROM_BODY.T
    noise = doa_sim.diffuse_noise(pos, doa_sim.SIM_RATE, seed=3).T.astype(np.float32)
    res = pipeline_with(people)(window(noise))
    assert not res.doa.used and "confidence" in res.doa.reason
    assert np.array_equal(res.mask, people[0].mask | people[1].mask)


def test_channel_count_mismatch_warns_and_keeps_running(recordings, caplog):
    people = [person_at(-25.0), person_at(25.0)]
    pipe = pipeline_with(people)
    six = np.concatenate([recordings[25.0], recordings[25.0][:, :2]], axis=1)
    for _ in range(3):
        res = pipe(window(six))
    assert not res.doa.used and "6 channels but mic array 'respeaker_4mic' has 4" in res.doa.reason
    assert res.mask.any()  # today's behaviour, no exception
    assert caplog.text.count("6 channels") == 1  # warned once, not once per window


def test_channels_option_selects_the_microphones(recordings):
    # ReSpeaker USB style: channel 0 is processed audio, 1-4 the raw microphones, 5 playback.
    x = recordings[25.0]
    six = np.concatenate([x.mean(axis=1, keepdims=True), x, np.zeros((len(x), 1), np.float32)], axis=1)
    res = pipeline_with([person_at(-25.0), person_at(25.0)], channels=[1, 2, 3, 4])(window(six))
    assert res.doa.used and res.doa.chosen == [1]


def located(st: DirectionStage, azimuth: float) -> DirectionResult:
    """What locate() gives for a flat board (body frame: x forward, y left) hearing azimuth degrees right."""
    a = math.radians(azimuth)
    est = DOAEstimate(np.array([math.cos(a), -math.sin(a), 0.0]), 0.9, "azimuth", np.array([0.0, 0.0, 1.0]), azimuth, None)
    off = offset_map(est, CAMERA, st.pose)
    return DirectionResult(estimate=est, likelihood=likelihood(off, 8.0), offset_deg=off, in_view=True)


def test_model_without_instances_is_weighted_per_pixel():
    st = stage()
    heat = np.full((H, W), 0.9, np.float32)
    dr, new = st.fuse(located(st, 25.0), heat, [])
    assert new[:, column_of(25.0)].min() > 0.85 and new[:, column_of(-25.0)].max() < 0.01
    assert dr.keep is None


def test_nearby_instances_are_both_kept():
    # Two candidates 4 degrees apart at the direction: the array cannot tell them apart, keep both.
    st = stage()
    people = [person_at(18.0, 10), person_at(23.0, 10), person_at(-25.0)]
    dr, _ = st.fuse(located(st, 20.0), np.zeros((H, W), np.float32), people)
    assert dr.chosen == [0, 1]


def test_array_file_config(tmp_path):
    assert array_file_config("respeaker_4mic")["array_to_camera"]["rotation"] == "body"
    f = tmp_path / "array.yaml"
    f.write_text("positions: [[-0.05, 0, 0], [0.05, 0, 0]]\ntranslation: [0.1, 0, 0]\n")
    cfg = array_file_config(str(f))
    assert cfg["array_to_camera"] == {"rotation": "optical", "translation": [0.1, 0, 0]}
    f.write_text("positions: [[0, 0, 0], [0, 0, 0]]\n")
    with pytest.raises(ConfigError, match="coincident"):
        array_file_config(str(f))
    f.write_text("preset: respeaker_4mic\npositions: [[0, 0, 0], [1, 0, 0]]\n")
    with pytest.raises(ConfigError, match="exactly one"):
        array_file_config(str(f))


def test_invalid_doa_settings_are_config_errors():
    with pytest.raises(ConfigError, match="sigma_deg"):
        stage(sigma_deg=0.0)
    with pytest.raises(ConfigError, match="rotation"):
        ArrayPose.from_config({"rotation": "sideways"})


# -- done-when: avs segment on a two-person photo with a simulated 4-mic recording -----------------

@pytest.fixture(scope="module")
def two_people_scene(tmp_path_factory):
    """grace_hopper twice with a 200 px gap; a camera whose person centres sit at -25 and +25 degrees."""
    d = tmp_path_factory.mktemp("doa_scene")
    photo = cv2.imread(str(asset_path("grace_hopper")))
    h, w = photo.shape[:2]
    gap = 200
    cv2.imwrite(str(d / "two.png"), np.concatenate([photo, np.full((h, gap, 3), 128, np.uint8), photo], axis=1))
    width = 2 * w + gap
    fx = (width / 2 - w / 2) / math.tan(math.radians(25.0))
    (d / "camera.yaml").write_text(
        f"image_width: {width}\nimage_height: {h}\ncamera_name: scene\n"
        f"camera_matrix:\n  rows: 3\n  cols: 3\n  data: [{fx}, 0.0, {width / 2}, 0.0, {fx}, {h / 2}, 0.0, 0.0, 1.0]\n")
    (d / "array.yaml").write_text("preset: respeaker_4mic\n")
    asset_path("speech")
    for az in (25, -25):
        sf.write(str(d / f"speech_{az:+d}.wav"), flat_board_recording(float(az), rt60=0.3, snr_db=10.0), doa_sim.SIM_RATE)
    return d, w, gap


@pytest.mark.parametrize("azimuth,side", [(25, "right"), (-25, "left")])
def test_avs_segment_masks_only_the_talking_person(two_people_scene, tmp_path, azimuth, side):
    from avs_core.cli import main

    for name in ("efficientat_mn04", "deeplabv3_voc", "yolox_nano", "grace_hopper"):
        asset_path(name)
    d, w, gap = two_people_scene
    out = tmp_path / "out"
    rc = main(["segment", str(d / "two.png"), "--audio", str(d / f"speech_{azimuth:+d}.wav"),
               "--mic-positions", str(d / "array.yaml"), "--camera-info", str(d / "camera.yaml"),
               "--out", str(out), "--device", "cpu"])
    assert rc == 0
    mask = cv2.imread(str(out / "two_0000_mask.png"), cv2.IMREAD_GRAYSCALE) > 0
    left, right = mask[:, :w].mean(), mask[:, w + gap:].mean()
    talking, quiet = (right, left) if side == "right" else (left, right)
    assert talking > 0.2 and quiet == 0.0, (left, right)
    entry = json.loads((out / "two_summary.json").read_text())["windows"][0]
    assert entry["doa"]["azimuth_deg"] == pytest.approx(azimuth, abs=10.0)
    chosen = [entry["doa"]["instances"][k] for k in entry["doa"]["chosen"]]
    assert len(chosen) == 1 and chosen[0]["label"] == "person"
    x0, _, x1, _ = chosen[0]["box"]
    assert (x0 >= w + gap - 20) if side == "right" else (x1 <= w + 20)


def test_avs_segment_rejects_bad_array_inputs_before_loading_models(two_people_scene, tmp_path, capsys, monkeypatch):
    from avs_core import pipeline
    from avs_core.cli import main

    d, _, _ = two_people_scene
    monkeypatch.setattr(pipeline.AVSPipeline, "from_config", lambda *a, **k: pytest.fail("model loaded"))
    stereo = tmp_path / "stereo.wav"
    sf.write(str(stereo), np.zeros((16000, 2), np.float32), 16000)
    args = ["segment", str(d / "two.png"), "--out", str(tmp_path / "o")]
    assert main(args + ["--audio", str(stereo), "--mic-positions", "respeaker_4mic",
                        "--camera-info", str(d / "camera.yaml")]) == 2
    assert "has 2 channel(s) but --mic-positions describes 4 microphones" in capsys.readouterr().err
    assert main(args + ["--audio", str(d / "speech_+25.wav"), "--mic-positions", "respeaker_4mic"]) == 2
    assert "needs --camera-info" in capsys.readouterr().err
    zero = tmp_path / "zero.yaml"
    zero.write_text("image_width: 1224\nimage_height: 600\n"  # an uncalibrated camera: K all zero
                    "camera_matrix:\n  rows: 3\n  cols: 3\n  data: [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]\n")
    assert main(args + ["--audio", str(d / "speech_+25.wav"), "--mic-positions", "respeaker_4mic",
                        "--camera-info", str(zero)]) == 2
    assert "positive focal lengths" in capsys.readouterr().err
