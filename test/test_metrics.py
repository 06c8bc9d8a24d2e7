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
    assert r["fscore"] == 0.0  # AVSBench scores a video without any sounding frame 0
    assert np.isnan(m.result("video_nonempty")["fscore"])  # the old rule leaves it out: nothing left
    assert r["empty_gt_frames"] == 2


# --------------------------------------------------------------- AVSBench reference, reimplemented here
# Straight from the definitions of OpenNLPLab/AVSBench avs_scripts/avs_s4/utils/utility.py (mask_iou,
# _eval_pr, Eval_Fmeasure) and the test loop of avs_s4/test.py (one video per batch, AverageMeter over
# videos), written with numpy frame by frame; the package's code is not used.

def _ref_thresholds() -> np.ndarray:
    import torch

    return torch.linspace(0, 1 - 1e-10, 255).numpy()  # the reference's float32 thresholds


def _ref_mask_iou(probs: np.ndarray, gts: np.ndarray) -> float:
    """mask_iou on one batch (= one video): mean over its frames."""
    n, num_pixels = probs.shape[0], probs.shape[1] * probs.shape[2]
    total = 0.0
    for p, t in zip(probs, gts):
        pred = (p > 0.5).astype(np.int64)
        t = t.astype(np.int64)
        if t.sum() == 0:
            inter, union = ((1 - t) * (1 - pred)).sum(), num_pixels
        else:
            inter, union = (pred * t).sum(), np.maximum(pred, t).sum()
        total += inter / (union + 1e-7)
    return total / n


def _ref_eval_fmeasure(probs: np.ndarray, gts: np.ndarray) -> float:
    """Eval_Fmeasure on one batch (= one video): 0 when every frame's ground truth is empty."""
    th = _ref_thresholds()
    score, avg_f, img_num = np.zeros(255), 0.0, 0
    for p, y in zip(probs, gts.astype(np.float64)):
        if y.mean() == 0.0:
            continue
        prec, recall = np.zeros(255), np.zeros(255)
        for i in range(255):
            y_temp = (p >= th[i]).astype(np.float64)
            tp = (y_temp * y).sum()
            prec[i], recall[i] = tp / (y_temp.sum() + 1e-20), tp / (y.sum() + 1e-20)
        with np.errstate(invalid="ignore"):
            f = (1 + 0.3) * prec * recall / (0.3 * prec + recall)
        f[f != f] = 0
        avg_f = avg_f + f
        img_num += 1
        score = avg_f / img_num
    return float(score.max())


def _random_videos(seed: int, n_videos: int = 6, frames: int = 5, size=(24, 20)):
    """Sigmoid outputs and blob ground truths; some videos silent throughout, some frames silent."""
    rng = np.random.default_rng(seed)
    th = _ref_thresholds()
    videos = []
    for v in range(n_videos):
        logits = rng.normal(0, 2, (frames, *size)).astype(np.float32)
        probs = (1 / (1 + np.exp(-logits))).astype(np.float32)
        # Some pixels sit exactly on a threshold (>= must hold there) or on the IoU cut 0.5 (> must fail).
        probs.flat[rng.integers(0, probs.size, 40)] = th[rng.integers(0, 255, 40)]
        probs.flat[rng.integers(0, probs.size, 10)] = np.float32(0.5)
        gts = np.zeros((frames, *size), np.uint8)
        if v % 3 != 2:  # every third video is silent in every frame
            for k in range(frames):
                if rng.random() < 0.8:
                    y0, x0 = rng.integers(0, size[0] - 4), rng.integers(0, size[1] - 4)
                    gts[k, y0:y0 + rng.integers(2, 10), x0:x0 + rng.integers(2, 10)] = 1
                    probs[k][gts[k] > 0] = np.clip(probs[k][gts[k] > 0] + 0.3, 0, 1)
        videos.append((f"vid{v}", probs, gts))
    return videos


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_video_protocol_matches_avsbench_reference(seed):
    videos = _random_videos(seed)
    assert any(not g.any() for _, _, g in videos)  # the fixture holds all-silent videos
    m = BinaryMetrics()
    for vid, probs, gts in videos:
        for p, g in zip(probs, gts):
            m.add(vid, p, g)
    r = m.result("video")
    ref_miou = np.mean([_ref_mask_iou(p, g) for _, p, g in videos])
    ref_f = np.mean([_ref_eval_fmeasure(p, g) for _, p, g in videos])
    assert r["miou"] == pytest.approx(ref_miou, abs=1e-9)
    assert r["fscore"] == pytest.approx(ref_f, abs=1e-9)
    # The former rule (silent videos left out of the F average) stays available and differs here.
    nonempty = [_ref_eval_fmeasure(p, g) for _, p, g in videos if g.any()]
    assert m.result("video_nonempty")["fscore"] == pytest.approx(np.mean(nonempty), abs=1e-9)
    assert m.result("video_nonempty")["fscore"] != pytest.approx(ref_f, abs=1e-6)


def test_all_silent_set_scores_zero_f_like_the_reference():
    rng = np.random.default_rng(5)
    m = BinaryMetrics()
    videos = []
    for v in range(3):
        probs = rng.random((5, 8, 8)).astype(np.float32)
        gts = np.zeros((5, 8, 8), np.uint8)
        videos.append((probs, gts))
        for p, g in zip(probs, gts):
            m.add(f"v{v}", p, g)
    assert m.result("video")["fscore"] == np.mean([_ref_eval_fmeasure(p, g) for p, g in videos]) == 0.0
    assert m.result("video")["miou"] == pytest.approx(np.mean([_ref_mask_iou(p, g) for p, g in videos]), abs=1e-9)


def _direct_fscore_curve(prob: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """The 255 x H*W formulation (one boolean map per threshold)."""
    th = _ref_thresholds()
    p = prob.astype(np.float32).reshape(1, -1)
    g = (gt > 0.5).reshape(1, -1)
    pred = p >= th.reshape(-1, 1)
    tp = (pred & g).sum(1).astype(np.float64)
    precision = tp / (pred.sum(1) + 1e-20)
    recall = tp / (g.sum() + 1e-20)
    with np.errstate(invalid="ignore"):
        f = 1.3 * precision * recall / (0.3 * precision + recall)
    return np.nan_to_num(f, nan=0.0)


@pytest.mark.parametrize("seed", range(4))
def test_histogram_fscore_curve_equals_direct_formula(seed):
    rng = np.random.default_rng(seed)
    th = _ref_thresholds()
    prob = rng.random((37, 53)).astype(np.float32)
    prob.flat[rng.integers(0, prob.size, 200)] = th[rng.integers(0, 255, 200)]  # exactly on thresholds
    prob.flat[:5] = [0.0, 1.0, np.nextafter(th[100], 0, dtype=np.float32), th[254], np.float32(1.5)]
    gt = rng.random((37, 53)) < 0.3
    np.testing.assert_array_equal(frame_fscore_curve(prob, gt), _direct_fscore_curve(prob, gt))


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
    assert np.array_equal(control_audio(x, "normal", "a"), x)
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


def test_per_class_breakdown_scores_each_class_on_its_own_pixels():
    labels = np.zeros((8, 8), np.int64)
    labels[:, :3] = 1  # dog
    labels[:, 5:] = 2  # cat
    sample = {"image": np.zeros((8, 8, 3), np.uint8), "audio": np.ones(160, np.float32), "sample_rate": 160,
              "mask": (labels > 0).astype(np.uint8), "labels": labels, "video_id": "v", "frame": 0}
    dog_only = (labels == 1).astype(np.float32)
    r = evaluate(lambda *a: dog_only, [sample], ["normal"], class_names=["bg", "dog", "cat"])
    per = r["conditions"]["normal"]["per_class"]
    # The dog is found exactly; the cat is missed. The whole binary mask would score both 3/6.
    assert per["dog"]["miou"] == pytest.approx(1.0) and per["dog"]["fscore"] == pytest.approx(1.0)
    # Cat: only threshold 0 predicts anything (all 40 of its own and background pixels): P = 24/40, R = 1.
    assert per["cat"]["miou"] == pytest.approx(0.0)
    assert per["cat"]["fscore"] == pytest.approx(1.3 * 0.6 / (0.3 * 0.6 + 1))
    assert r["conditions"]["normal"]["miou"] == pytest.approx(0.5)
    # A false positive on background counts against the class; one on the other sounding class does not.
    spill = dog_only.copy()
    spill[:, 3] = 1  # background column
    spill[:, 5] = 1  # a cat column
    per = evaluate(lambda *a: spill, [sample], ["normal"], class_names=["bg", "dog", "cat"])["conditions"]["normal"]["per_class"]
    assert per["dog"]["miou"] == pytest.approx(24 / 32)
    assert per["cat"]["miou"] == pytest.approx(8 / 32)
