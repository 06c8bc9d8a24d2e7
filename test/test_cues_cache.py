"""Cue cache round trip / merge / resume, and training/make_cues.py over an AVSBench-semantic folder."""
from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from avs_core.cues.cache import CueCache
from avs_core.errors import InputError

REPO = Path(__file__).resolve().parent.parent


def load_make_cues():
    spec = importlib.util.spec_from_file_location("make_cues", REPO / "training" / "make_cues.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_round_trip_merge_and_validation(tmp_path):
    path = tmp_path / "sub" / "cues.json"
    cache = CueCache(path)
    cache.put("uidA", 0, ["guitar", "man"])
    cache.put("uidA", 3, [])
    cache.save()
    assert json.loads(path.read_text()) == {"uidA": {"f0": ["guitar", "man"], "f3": []}}
    assert not list(path.parent.glob("*.tmp"))  # atomic write leaves no temp file behind
    again = CueCache.load(path)
    assert again.get("uidA", 0) == ["guitar", "man"] and again.has("uidA", 3) and not again.has("uidA", 1)
    again.merge({"uidA": {"f0": ["dog"]}, "uidB": {"f1": ["car"]}})
    assert again.get("uidA", 0) == ["dog"] and again.get("uidA", 3) == [] and again.get("uidB", 1) == ["car"]
    assert len(again) == 3
    assert len(CueCache.load(tmp_path / "missing.json")) == 0
    with pytest.raises(InputError):
        CueCache.load(tmp_path / "missing.json", missing_ok=False)
    bad = tmp_path / "bad.json"
    bad.write_text('{"uid": {"f0": "guitar"}}')
    with pytest.raises(InputError):
        CueCache.load(bad)
    bad.write_text("{not json")
    with pytest.raises(InputError):
        CueCache.load(bad)


def make_dataset(root: Path, clips: int = 3, seconds: int = 3, sr: int = 16000) -> None:
    rows = []
    for c in range(clips):
        uid = f"clip{c}"
        d = root / "v2" / uid / "frames"
        d.mkdir(parents=True)
        for k in range(seconds):
            Image.fromarray(np.full((24, 32, 3), 40 * k, np.uint8)).save(d / f"{k}.jpg")
        sf.write(str(d.parent / "audio.wav"), np.zeros(sr * seconds, np.float32), sr)
        rows.append({"uid": uid, "split": "train" if c < 2 else "test", "label": "v2"})
    with (root / "metadata.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["uid", "split", "label"])
        w.writeheader()
        w.writerows(rows)


def test_make_cues_resumes(tmp_path, monkeypatch):
    mk = load_make_cues()
    make_dataset(tmp_path)
    calls = []

    def fake_tags(samples, sr):
        calls.append(sr)
        return [("Bark", 0.8), ("Speech", 0.4)]

    from avs_core.cues import providers

    real_build = providers.build_cue_provider
    monkeypatch.setattr(mk, "build_cue_provider", lambda cfg: real_build(cfg, tag_fn=fake_tags))
    out = tmp_path / "cues.json"
    # A first, partial run (as if killed after 4 frames) ...
    mk.run(tmp_path, out, {"backend": "tagger"}, batch_size=2, split="train", limit=4)
    assert len(CueCache.load(out)) == 4 and len(calls) == 4
    # ... and the rerun does only the rest.
    cache = mk.run(tmp_path, out, {"backend": "tagger"}, batch_size=2, split="train")
    assert len(calls) == 6 and len(cache) == 6
    assert json.loads(out.read_text()) == {
        f"clip{c}": {f"f{k}": ["dog", "person"] for k in range(3)} for c in range(2)
    }
    # Nothing left: no provider is even built.
    monkeypatch.setattr(mk, "build_cue_provider", lambda cfg: pytest.fail("provider built with nothing to do"))
    mk.run(tmp_path, out, {"backend": "tagger"}, split="train")


def test_make_cues_cli_errors(tmp_path, capsys):
    mk = load_make_cues()
    assert mk.main(["--root", str(tmp_path)]) == 2
    assert "no frames found" in capsys.readouterr().err
