"""Detector cue backend: visible sounding-capable classes, best first."""
from __future__ import annotations

import numpy as np
import pytest

from avs_core.cues.providers import build_cue_provider
from avs_core.cues.vision_cues import classes_to_cues
from avs_core.cues.vocabulary import Vocabulary
from avs_core.errors import ConfigError

from conftest import asset_path


def test_classes_to_cues_filters_and_orders():
    vocab = Vocabulary.build(None)
    conf = {"dining table": 0.9, "person": 0.8, "tvmonitor": 0.7, "aeroplane": 0.5, "dog": 0.2, "cell phone": 0.6}
    assert classes_to_cues(conf, vocab, min_score=0.3, max_cues=5) == ["person", "tv", "phone", "airplane"]
    assert classes_to_cues(conf, vocab, min_score=0.3, max_cues=2) == ["person", "tv"]


def test_yolox_cues_on_shared_image():
    from PIL import Image

    asset_path("yolox_nano")
    with Image.open(asset_path("yolox_dog")) as im:
        rgb = np.asarray(im.convert("RGB"))
    provider = build_cue_provider({"backend": "detector", "detector": {"kind": "yolox"}})
    cues = provider(rgb, None, None, stamp=2.0)
    assert cues.source == "detector:coco" and cues.stamp == 2.0
    assert "dog" in cues.texts and len(cues.texts) <= 5
    assert provider(None).texts == ()
    with pytest.raises(ConfigError):
        build_cue_provider({"backend": "detector", "detector": {"kind": "sonar"}})


def test_avs_cues_command(capsys):
    import json

    from avs_core.cli import main

    asset_path("yolox_nano")
    assert main(["cues", "--image", str(asset_path("yolox_dog")), "backend=detector"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == "detector:coco" and "dog" in out["texts"]
    assert main(["cues", "--image", "no_such_image.jpg", "backend=detector"]) == 2
    assert "no such file" in capsys.readouterr().err
