"""AVSBench metric semantics checked against hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest

from avs_core.errors import InputError
from avs_core.metrics import BinaryMetrics, SemanticMetrics, frame_fscore_curve, frame_iou, relative_drop


def _half(h=4, w=4, left=True):
    m = np.zeros((h, w), np.float32)
    if left:
        m[:, : w // 2] = 1
    else:
        m[:, w // 2:] = 1
    return m


def test_iou_hand_cases():
    ones = np.ones((4, 4), np.float32)
    zeros = np.zeros((4, 4), np.float32)
    assert frame_iou(ones, ones) == pytest.approx(1.0)
    assert frame_iou(zeros, ones) == pytest.approx(0.0)
    # Half of the image predicted, full GT: 8/16.
    assert frame_iou(_half(), ones) == pytest.approx(0.5)
    # Half overlap: left half predicted, top half GT -> inter 4, union 12.
    top = np.zeros((4, 4), np.float32)
    top[:2] = 1
    assert frame_iou(_half(), top) == pytest.approx(4 / 12)
    # Threshold is strictly > 0.5.
    assert frame_iou(np.full((4, 4), 0.5), ones) == pytest.approx(0.0)
    assert frame_iou(np.full((4, 4), 0.51), ones) == pytest.approx(1.0)


def test_empty_ground_truth_scores_predicted_background():
    zeros = np.zeros((4, 4), np.float32)
    assert frame_iou(zeros, zeros) == pytest.approx(1.0)
    assert frame_iou(np.ones((4, 4)), zeros) == pytest.approx(0.0)
    assert frame_iou(_half(), zeros) == pytest.approx(0.5)
    assert frame_fscore_curve(_half(), zeros) is None


def test_fscore_hand_cases():
    ones = np.ones((4, 4), np.float32)
    # Perfect binary prediction: P = R = 1 at every threshold above 0 -> F = 1.
    assert frame_fscore_curve(ones, ones).max() == pytest.approx(1.0)
    # Half predicted (prob 1), full GT: P = 1, R = 0.5 -> F = 1.3*0.5/(0.3+0.5).
    curve = frame_fscore_curve(_half(), ones)
    assert curve.shape == (255,)
    assert curve[1:].max() == pytest.approx(1.3 * 0.5 / 0.8)
    # At threshold 0 everything is predicted: P = 0.5 (half GT), R = 1.
    assert frame_fscore_curve(np.zeros((4, 4)), _half())[0] == pytest.approx(1.3 * 0.5 / (0.3 * 0.5 + 1))
    # Nothing predicted above threshold: NaN -> 0.
    assert frame_fscore_curve(np.zeros((4, 4)), ones)[1:].max() == 0.0


def test_video_and_frame_protocols_and_batch_independence():
    ones = np.ones((4, 4), np.float32)
    zeros = np.zeros((4, 4), np.float32)
    frames = [("a", ones, ones), ("a", zeros, ones), ("b", _half(), ones)]
    m = BinaryMetrics()
    for vid, p, g in frames:
        m.add(vid, p, g)
    video = m.result("video")
    # Video a: (1 + 0)/2 = 0.5; video b: 0.5 -> mean 0.5. Frame pooling: (1 + 0 + 0.5)/3.
    assert video["miou"] == pytest.approx(0.5)
    assert m.result("frame")["miou"] == pytest.approx(0.5)
    frames.append(("b", ones, ones))
    m2 = BinaryMetrics()
    for vid, p, g in frames:
        m2.add(vid, p, g)
    assert m2.result("video")["miou"] == pytest.approx((0.5 + 0.75) / 2)
    assert m2.result("frame")["miou"] == pytest.approx(2.5 / 4)
    # Adding in a different order / grouping gives the same numbers (no batch dependence).
    m3 = BinaryMetrics()
    for vid, p, g in reversed(frames):
        m3.add(vid, p, g)
    assert m3.result("video") == pytest.approx(m2.result("video"), nan_ok=True)
    # Video F: max over thresholds of the frame-averaged curve.
    fa = np.mean([frame_fscore_curve(ones, ones), frame_fscore_curve(zeros, ones)], axis=0).max()
    fb = np.mean([frame_fscore_curve(_half(), ones), frame_fscore_curve(ones, ones)], axis=0).max()
    assert m2.result("video")["fscore"] == pytest.approx((fa + fb) / 2)
    with pytest.raises(InputError):
        m2.result("batch")


def test_empty_frames_area_and_silent_score():
    m = BinaryMetrics()
    zeros = np.zeros((4, 4), np.float32)
    m.add("v", _half(), zeros)  # silent frame, half predicted
    m.add("v", zeros, zeros)  # silent frame, nothing predicted
    r = m.result()
    assert r["silent_score"] == pytest.approx(0.25)
    assert r["area"] == pytest.approx(0.25)
    assert r["miou"] == pytest.approx(0.75)
    assert np.isnan(r["fscore"])  # no non-empty frame -> no F-score
    assert r["empty_gt_frames"] == 2


def test_size_mismatch_is_an_input_error():
    with pytest.raises(InputError):
        frame_iou(np.zeros((4, 4)), np.zeros((8, 8)))
    with pytest.raises(InputError):
        BinaryMetrics().result()


def test_semantic_per_class():
    gt = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
    pred = np.array([[0, 0, 1, 2], [0, 0, 1, 2]])
    m = SemanticMetrics(3, ["bg", "dog", "cat"])
    m.add(pred, gt)
    r = m.result()
    assert r["per_class"]["bg"]["miou"] == pytest.approx(1.0)
    assert r["per_class"]["dog"]["miou"] == pytest.approx(0.5)
    assert r["per_class"]["cat"]["miou"] == pytest.approx(0.0)
    # dog: P = 1, R = 0.5.
    assert r["per_class"]["dog"]["fscore"] == pytest.approx(1.3 * 0.5 / 0.8)
    assert r["miou"] == pytest.approx(0.5)
    # A second frame where only background occurs averages over frames per class.
    m.add(np.zeros((2, 4), int), np.zeros((2, 4), int))
    r = m.result()
    assert r["per_class"]["bg"]["frames"] == 2 and r["per_class"]["dog"]["frames"] == 1
    assert r["per_class"]["dog"]["miou"] == pytest.approx(0.5)


def test_relative_drop():
    assert relative_drop(0.8, 0.2) == pytest.approx(0.75)
    assert np.isnan(relative_drop(0.0, 0.0))


# ----------------------------------------------------------------------------- audio-control evaluation

from avs_core.evaluation import control_audio, evaluate, format_table  # noqa: E402


def _samples():
    rng = np.random.default_rng(0)
    out = []
    for v in range(2):
        for k in range(3):
            mask = np.zeros((8, 8), np.uint8)
            if k != 2:  # third second silent
                mask[: 2 + v, : 4] = 1
            audio = (rng.standard_normal(1600) * 0.1 if mask.any() else np.zeros(1600)).astype(np.float32)
            trap = np.zeros((8, 8), bool)
            trap[6:, 6:] = True
            image = np.full((8, 8, 3), 10 * (3 * v + k), np.uint8)
            out.append({"image": image, "audio": audio, "sample_rate": 1600, "mask": mask, "cues": [],
                        "silent_visible": trap, "video_id": f"v{v}", "frame": k})
    return out


def test_control_audio():
    x = np.random.default_rng(1).standard_normal(16000).astype(np.float32) * 0.1
    assert not control_audio(x, "mute", "a").any()
    n10 = control_audio(x, "noise10", "a")
    assert np.mean(n10**2) == pytest.approx(np.mean(x**2) / 10, rel=0.05)
    assert np.mean(control_audio(x, "noise40", "a") ** 2) == pytest.approx(np.mean(x**2) / 1e4, rel=0.05)
    assert np.array_equal(n10, control_audio(x, "noise10", "a"))  # seeded per frame
    assert not np.array_equal(n10, control_audio(x, "noise10", "b"))
    assert control_audio(x, "normal", "a") is not None
    with pytest.raises(InputError):
        control_audio(x, "louder", "a")


def test_evaluate_audio_following_vs_look_following_predictors():
    samples = _samples()
    masks = {s["image"].tobytes(): s["mask"] for s in samples}

    def follows_audio(image, audio, sr, cues):  # the GT when the audio is loud, else nothing
        return masks[image.tobytes()].astype(np.float32) * float(np.sqrt(np.mean(audio**2)) > 0.05)

    def follows_look(image, audio, sr, cues):  # every object, sounding or not
        m = np.zeros((8, 8), np.float32)
        m[:4, :4] = 1
        m[6:, 6:] = 1
        return m

    good = evaluate(follows_audio, samples)["conditions"]
    assert good["normal"]["miou"] == pytest.approx(1.0, abs=1e-6)
    assert good["normal"]["silent_score"] == 0.0 and good["normal"]["visible_silent_rate"] == 0.0
    assert good["mute"]["area_drop"] == pytest.approx(1.0) and good["noise10"]["area_drop"] == pytest.approx(1.0)
    assert good["mute"]["delta_m"] > 0.5
    bad = evaluate(follows_look, samples)["conditions"]
    assert bad["mute"]["area_drop"] == pytest.approx(0.0) and bad["mute"]["delta_m"] == pytest.approx(0.0)
    assert bad["normal"]["visible_silent_rate"] == pytest.approx(1.0)
    assert bad["normal"]["silent_score"] > 0
    text = format_table({"toy": {"conditions": good}})
    assert "mute" in text and "noise40" in text
