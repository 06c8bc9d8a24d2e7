import csv

import numpy as np
import pytest
import yaml

from avs_core.errors import ConfigError
from avs_core.sound_sources import DEFAULT_PATH, SoundSourceMap
from avs_core.vision.classes import COCO_CLASSES, VOC_CLASSES

SOUNDING_VOC = {"person", "bird", "cat", "cow", "dog", "horse", "sheep", "aeroplane", "bicycle",
                "boat", "bus", "car", "motorbike", "train", "tvmonitor"}


@pytest.fixture(scope="module")
def labels(asset):
    with open(asset("audioset_labels"), newline="") as fh:
        return [row["display_name"] for row in csv.DictReader(fh)]


def test_default_map_loads_and_covers_sounding_voc_classes(labels):
    bridge = SoundSourceMap.load(labels, None, VOC_CLASSES, COCO_CLASSES)
    assert {c.voc for c in bridge.concepts if c.voc} == SOUNDING_VOC
    coco = {c.coco for c in bridge.concepts if c.coco}
    assert {"person", "dog", "car", "truck", "keyboard", "cell phone", "clock", "airplane"} <= coco


def test_sounding_uses_max_over_mapped_classes(labels):
    bridge = SoundSourceMap.load(labels)
    probs = np.zeros(len(labels), np.float32)
    probs[labels.index("Bark")] = 0.6
    probs[labels.index("Speech")] = 0.1
    probs[labels.index("Music")] = 0.99  # unmapped on purpose
    sounding = bridge.sounding(probs, 0.2)
    assert [(c.name, round(s, 2)) for c, s in sounding] == [("dog", 0.6)]


def test_unknown_audioset_class_rejected(labels, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"concepts": {"dog": {"voc": "dog", "audioset": ["Barkk"]}}}))
    with pytest.raises(ConfigError, match="Barkk"):
        SoundSourceMap.load(labels, path)


def test_unknown_visual_class_rejected(labels, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"concepts": {"dog": {"voc": "doggo", "audioset": ["Bark"]}}}))
    with pytest.raises(ConfigError, match="doggo"):
        SoundSourceMap.load(labels, path, VOC_CLASSES, COCO_CLASSES)


def test_default_path_is_in_config_dir():
    assert DEFAULT_PATH.name == "sound_sources.yaml" and DEFAULT_PATH.is_file()
