"""Datasets: synthetic scenes (ground truth = sounding objects only, hard cases present, seeded),
AVSBench layouts, AVS-V3 split lists, few-shot subsets and the training collate."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from avs_core.errors import AssetError, ConfigError, InputError
from avs_core.data.avsbench import AVSObjectDataset, AVSSemanticDataset, labels_from_rgb, v3_rows, voc_palette
from avs_core.data.fewshot import fraction_subset, v3_shot_rows
from avs_core.data.synthetic import CLASSES, SAMPLE_RATE, SynthConfig, SyntheticDataset, make_clip, write_avss
from avs_core.data.transforms import Collate

SMALL = SynthConfig.from_dict({"size": 64, "clips": {"train": 30, "val": 1, "test": 3, "unseen": 6}})


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_synthetic_is_seeded_and_reproducible():
    a, b = make_clip(SMALL, "train", 3), make_clip(SMALL, "train", 3)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio) and np.array_equal(a.labels, b.labels)
    other = make_clip(SynthConfig.from_dict({"size": 64, "seed": 1}), "train", 3)
    assert not np.array_equal(a.frames, other.frames)
    assert a.frames.shape == (5, 64, 64, 3) and a.audio.shape == (5 * SAMPLE_RATE,) and a.audio.dtype == np.float32


def test_ground_truth_is_the_sounding_objects_and_hard_cases_exist():
    n_silent_frames = n_trap = n_multi = 0
    seen_names = {c.name for c in SMALL.seen_classes}
    for i in range(30):
        c = make_clip(SMALL, "train", i)
        assert {n for sec in c.visible for n in sec} <= seen_names  # held-out classes never in train
        for k in range(SMALL.seconds):
            sec = c.audio[k * SAMPLE_RATE:(k + 1) * SAMPLE_RATE]
            gt_classes = {CLASSES[v - 1].name for v in np.unique(c.labels[k]) if v > 0}
            # GT classes are exactly the sounding classes that are visible.
            assert gt_classes == set(c.sounding[k]) & set(c.visible[k])
            assert not (c.masks[k].astype(bool) & c.silent_visible[k]).any()
            if not c.sounding[k]:
                n_silent_frames += 1
                assert c.masks[k].sum() == 0
                assert _rms(sec) < 0.11  # only ambient noise (at most -20 dBFS)
            else:
                assert _rms(sec) > 0.05
            n_trap += bool(c.silent_visible[k].any() and c.sounding[k])
            n_multi += len(c.sounding[k]) >= 2
    assert n_silent_frames > 0 and n_trap > 0 and n_multi > 0
    unseen_names = {c.name for c in SMALL.unseen_classes}
    for i in range(6):
        c = make_clip(SMALL, "unseen", i)
        assert unseen_names & set(c.visible[0])


def test_write_avss_round_trips_through_the_semantic_loader(tmp_path):
    counts = write_avss(SMALL, tmp_path)
    assert counts["test"] == 3
    disk = AVSSemanticDataset(tmp_path, "test")
    mem = SyntheticDataset(SMALL, "test")
    assert len(disk) == len(mem) == 15
    for i in (0, 7, 14):
        a, b = disk[i], mem[i]
        for key in ("image", "mask", "labels", "audio"):
            assert np.array_equal(a[key], b[key]), key
        assert a["cues"] == b["cues"] and a["sample_rate"] == SAMPLE_RATE
    assert disk.class_names[0] == "background" and disk.class_names[1] == CLASSES[0].name


def _write_s4(root, names, split, annotated):
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "s4_meta_data.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "a_obj", "category", "split"])
        for n in names:
            w.writerow([n, "x", "dog", split])
    d = root / "s4_data"
    for n in names:
        fr = d / "visual_frames" / split / "dog" / n
        gm = d / "gt_masks" / split / "dog" / n
        fr.mkdir(parents=True)
        gm.mkdir(parents=True)
        for i in range(1, 6):
            Image.fromarray(np.full((24, 32, 3), i * 10, np.uint8)).save(fr / f"{n}_{i}.png")
            if i <= annotated:
                m = np.zeros((24, 32), np.uint8)
                m[:, : 4 * i] = 255
                Image.fromarray(m).save(gm / f"{n}_{i}.png")
        wav = d / "audio_wav" / split / "dog"
        wav.mkdir(parents=True, exist_ok=True)
        # Second k holds the constant value k / 10, so the pairing is visible.
        sf.write(str(wav / f"{n}.wav"), np.repeat(np.arange(5) / 10, 8000).astype(np.float32), 8000, subtype="FLOAT")


def test_s4_layout_pairs_frame_k_with_second_k(tmp_path):
    _write_s4(tmp_path / "train_root", ["v1", "v2"], "train", annotated=1)
    train = AVSObjectDataset(tmp_path / "train_root", "s4", "train")
    assert len(train) == 2  # S4 train: frame 1 only
    _write_s4(tmp_path / "test_root", ["v3"], "test", annotated=5)
    test = AVSObjectDataset(tmp_path / "test_root", "s4", "test")
    assert len(test) == 5
    s = test[3]
    assert s["frame"] == 3 and s["image"].shape == (24, 32, 3) and s["mask"].sum() == 24 * 16
    assert s["sample_rate"] == 8000 and np.allclose(s["audio"], 0.3)
    # A listening context (the zero-shot tagger's): the seconds before the frame's own, as far as the clip goes.
    test.audio_before_s = 1.5
    np.testing.assert_allclose(test[3]["audio"], np.repeat([0.1, 0.2, 0.2, 0.3, 0.3], 4000), atol=1e-7)
    np.testing.assert_allclose(test[1]["audio"], np.repeat([0.0, 0.1], 8000), atol=1e-7)
    with pytest.raises(ConfigError):
        AVSObjectDataset(tmp_path / "missing", "s4", "test")


def test_palette_and_label_decoding():
    pal = voc_palette(71)
    assert tuple(pal[0]) == (0, 0, 0) and tuple(pal[1]) == (128, 0, 0) and tuple(pal[2]) == (0, 128, 0)
    labels = np.array([[0, 1], [2, 70]])
    assert np.array_equal(labels_from_rgb(pal[labels], pal), labels)
    with pytest.raises(InputError):
        labels_from_rgb(np.full((1, 1, 3), 7, np.uint8), pal)


def test_v3_split_lists_from_the_asset():
    try:
        unseen = v3_rows("meta_v3_unseen")
    except AssetError as exc:
        pytest.skip(f"AVS-V3 split asset unavailable: {exc}")
    assert len(unseen) > 100 and {"uid", "label", "split"} <= set(unseen[0])
    one, five = v3_shot_rows(1), v3_shot_rows(5)
    assert 0 < len(one) < len(five)
    with pytest.raises(ConfigError):
        v3_shot_rows(2)


def test_fraction_subset_is_stratified_and_seeded():
    ds = SyntheticDataset(SMALL, "train")
    a, b = fraction_subset(ds, 0.3, seed=0), fraction_subset(ds, 0.3, seed=0)
    assert [r["video_id"] for r in a.records] == [r["video_id"] for r in b.records]
    assert set(a.video_classes().values()) == set(ds.video_classes().values())  # every class kept
    assert len(a.video_classes()) < len(ds.video_classes())
    with pytest.raises(ConfigError):
        fraction_subset(ds, 0.0, seed=0)


def test_collate_letterboxes_frames_and_masks():
    sample = {"image": np.full((60, 120, 3), 255, np.uint8), "mask": np.ones((60, 120), np.uint8),
              "audio": np.ones(8000, np.float32) * 0.1, "sample_rate": 8000, "cues": ["dog"], "video_id": "v", "frame": 0}
    b = Collate(64, 16000)([sample, sample])
    assert b["image"].shape == (2, 3, 64, 64) and b["audio"].shape == (2, 16000) and b["target"].shape == (2, 1, 64, 64)
    # Wide frame -> content in the top 32 rows, zero padding below.
    assert b["target"][0, 0, :32].min() == 1 and b["target"][0, 0, 32:].max() == 0
    assert b["image"][0, :, 40:].max() == 0 and b["cues"] == [["dog"], ["dog"]]
    # 60x120 scaled so the long side is 64: 32x64 valid, the rest is padding for the model to zero.
    assert b["image_hw"] == [(32, 64), (32, 64)]


def test_avs_synth_cli_writes_the_semantic_layout(tmp_path):
    from avs_core.cli import main

    assert main(["synth", "--out", str(tmp_path), "--size", "48", "--seconds", "2",
                 "--train", "1", "--val", "0", "--test", "1", "--unseen", "1"]) == 0
    ds = AVSSemanticDataset(tmp_path, "unseen")
    assert len(ds) == 2 and ds[0]["image"].shape == (48, 48, 3)
    assert (tmp_path / "cues.json").is_file() and (tmp_path / "label2idx.json").is_file()
