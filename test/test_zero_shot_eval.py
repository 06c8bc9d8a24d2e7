"""``avs eval --model zero_shot`` on an AVSBench-S4-layout fixture built from real assets.

The frames are the DeepLab test photos with their upstream reference masks (the
dog and bird segmentations of google-coral/test_data), the audio a real 5 s dog
recording. S4 pairs frame k with second k.
"""
import csv
import json
import subprocess
import sys

import cv2
import numpy as np
import soundfile as sf
import yaml

from avs_core.audio.frontend import read_audio, to_mono_float


def write_s4_video(root, split, name, category, frame, gt, audio, sr):
    """One S4 video: 5 identical frames and reference masks, 5 s of audio (layout of avs_core.data.avsbench)."""
    d = root / "s4_data"
    frames = d / "visual_frames" / split / category / name
    masks = d / "gt_masks" / split / category / name
    wavs = d / "audio_wav" / split / category
    for p in (frames, masks, wavs):
        p.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        cv2.imwrite(str(frames / f"{name}_{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(masks / f"{name}_{i}.png"), gt.astype(np.uint8) * 255)
    sf.write(str(wavs / f"{name}.wav"), audio[: 5 * sr], sr)
    meta = root / "s4_meta_data.csv"
    new = not meta.exists()
    with open(meta, "a", newline="") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(["name", "a_obj", "category", "split"])
        w.writerow([name, category, category, split])


def test_avs_eval_zero_shot_on_s4_layout(asset, tmp_path):
    samples, sr = read_audio(asset("real_sounds/dog_bark_esc10_3-155312-A.ogg"))
    bark = to_mono_float(samples, sr)
    assert len(bark) >= 5 * sr

    def photo(name, label):
        rgb = cv2.cvtColor(cv2.imread(str(asset(f"{name}_segmentation"))), cv2.COLOR_BGR2RGB)
        ref = cv2.imread(str(asset(f"{name}_segmentation_mask")))[:, :, 0]
        return rgb, ref == label  # label indices of the upstream reference masks

    root = tmp_path / "avsbench"
    # test: a dog on screen, a dog barking. val: a bird on screen, the same bark (the bird is silent).
    write_s4_video(root, "test", "dogvid", "dog", *photo("dog", 0), bark, sr)
    write_s4_video(root, "val", "birdvid", "bird", *photo("bird", 3), bark, sr)
    cfg = tmp_path / "eval.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"kind": "s4", "root": str(root)}}))
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "avs_core.cli", "eval", "--model", "zero_shot", "--config", str(cfg),
                           "--splits", "test", "val", "--conditions", "normal", "mute", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "mIoU" in proc.stdout and "test" in proc.stdout
    res = json.loads(out.read_text())
    dog, bird = res["test"]["conditions"], res["val"]["conditions"]
    # The dog is heard and seen: the mask follows the reference segmentation.
    assert dog["normal"]["miou"] > 0.6 and dog["normal"]["fscore"] > 0.6
    # Muted, the same picture gives nothing.
    assert dog["mute"]["miou"] == 0 and dog["mute"]["area"] == 0
    # A barking dog never masks the silent bird.
    assert bird["normal"]["miou"] < 0.05 and bird["normal"]["area"] == 0


def test_avs_eval_needs_a_model_or_checkpoint(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "avs_core.cli", "eval", "--config", str(tmp_path / "x.yaml")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "--checkpoint" in proc.stderr and "--model" in proc.stderr
