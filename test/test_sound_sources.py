"""The ontology-aware bridge: aggregation hand-checked on a small ontology, the real bridge, bad input."""
import csv

import numpy as np
import pytest
import yaml

from avs_core.errors import ConfigError
from avs_core.ontology import Ontology, OntologyClass
from avs_core.sound_sources import DEFAULT_PATH, SoundSourceMap
from avs_core.vision.classes import COCO_CLASSES, VOC_CLASSES

SOUNDING_VOC = {"person", "bird", "cat", "cow", "dog", "horse", "sheep", "aeroplane", "bicycle",
                "boat", "bus", "car", "motorbike", "train", "tvmonitor"}
HOUSEHOLD_COCO = {"clock", "toilet", "keyboard", "cell phone", "tv", "microwave", "oven", "sink", "hair drier"}

# A small ontology: Animal > {Dog > {Bark, Growl}, Cat > {Meow, Growl}}; Vehicle > {Car > Horn,
# Truck > Fire engine, Aircraft > Helicopter}; Siren > Fire engine (a second parent); Music; Silence;
# "Yelp" (under Dog) is blacklisted.
TREE = {
    "Animal": ["Dog", "Cat"], "Dog": ["Bark", "Yelp", "Growl"], "Bark": [], "Yelp": [], "Growl": [],
    "Cat": ["Meow", "Growl"], "Meow": [],
    "Vehicle": ["Car", "Truck", "Aircraft"], "Car": ["Horn"], "Horn": [], "Truck": ["Fire engine"],
    "Fire engine": [], "Aircraft": ["Helicopter"], "Helicopter": [], "Siren": ["Fire engine"],
    "Music": [], "Silence": [],
}
LABELS = [n for n in TREE if n != "Yelp"]
BRIDGE = {
    "aggregate": "noisy_or", "evidence_floor": 0.05, "generic_descend": 0.25,
    "generic": ["Animal", "Vehicle", "Siren"],
    "not_sources": ["Silence"],
    "concepts": {
        "dog": {"voc": "dog", "audioset": ["Dog"]},
        "cat": {"voc": "cat", "audioset": ["Cat"]},
        "car": {"voc": "car", "coco": "car", "audioset": ["Car"]},
        "truck": {"coco": "truck", "audioset": ["Truck"]},
    },
}


@pytest.fixture(scope="module")
def small_onto():
    return Ontology([OntologyClass(f"/{n}", n, tuple(f"/{c}" for c in kids), False, n == "Yelp")
                     for n, kids in TREE.items()], "small")


def small_bridge(tmp_path, onto, **changes):
    cfg = {**BRIDGE, **changes}
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return SoundSourceMap.load(LABELS, path, VOC_CLASSES, COCO_CLASSES, onto)


def probs(**values):
    p = np.zeros(len(LABELS), np.float32)
    for name, v in values.items():
        p[LABELS.index(name.replace("_", " "))] = v
    return p


def test_concept_owns_its_subtree_minus_blacklist(tmp_path, small_onto):
    bridge = small_bridge(tmp_path, small_onto)
    by = {c.name: c for c in bridge.concepts}
    assert set(by["dog"].classes) == {"Dog", "Bark", "Growl"} and set(by["cat"].classes) == {"Cat", "Meow", "Growl"}
    assert set(by["truck"].classes) == {"Truck", "Fire engine"}
    assert {g.name: set(g.covers) for g in bridge.generic} == {
        "Animal": {"dog", "cat"}, "Vehicle": {"car", "truck"}, "Siren": {"truck"}}


@pytest.mark.parametrize("aggregate, expected", [
    # Dog 0.45 and Bark 0.25 -> evidence (0.45-0.05)/0.95 = 0.421053 and 0.2/0.95 = 0.210526.
    ("noisy_or", 1 - (1 - 0.4 / 0.95) * (1 - 0.2 / 0.95)),  # 0.542936
    ("max", 0.4 / 0.95),
])
def test_concept_score_hand_checked(tmp_path, small_onto, aggregate, expected):
    bridge = small_bridge(tmp_path, small_onto, aggregate=aggregate)
    heard = bridge.hear(probs(Dog=0.45, Bark=0.25, Meow=0.04), 0.2)
    assert [(c.name, round(s, 6)) for c, s in heard.specific] == [("dog", round(expected, 6))]


def test_spread_evidence_is_heard_only_when_combined(tmp_path, small_onto):
    # Fire engine 0.17 and Truck 0.17: each 0.126 < 0.2; noisy-OR 1 - 0.873684^2 = 0.236676.
    p = probs(Truck=0.17, Fire_engine=0.17)
    assert [c.name for c, _ in small_bridge(tmp_path, small_onto).hear(p, 0.2).specific] == ["truck"]
    assert small_bridge(tmp_path, small_onto, aggregate="max").hear(p, 0.2).specific == []


def test_generic_selects_its_covered_concepts_when_nothing_specific(tmp_path, small_onto):
    heard = small_bridge(tmp_path, small_onto).hear(probs(Vehicle=0.30), 0.2)
    assert heard.specific == []
    [(g, score, target, covered)] = heard.generic
    assert (g.name, target, round(score, 6)) == ("Vehicle", "Vehicle", round(0.25 / 0.95, 6))
    assert {c.name for c in covered} == {"car", "truck"}


def test_specific_beats_generic(tmp_path, small_onto):
    # "Fire engine" (truck) is heard: neither "Vehicle" nor "Siren" may select the car.
    heard = small_bridge(tmp_path, small_onto).hear(probs(Vehicle=0.6, Siren=0.5, Fire_engine=0.3), 0.2)
    assert [c.name for c, _ in heard.specific] == ["truck"]
    assert heard.generic == []


def test_generic_follows_weaker_but_present_specific_evidence(tmp_path, small_onto):
    # Helicopter 0.12 (evidence 0.0737) is below the threshold but above 0.25 x 0.2: the Vehicle
    # evidence is about aircraft, which no concept covers, so no car or truck is selected.
    heard = small_bridge(tmp_path, small_onto).hear(probs(Vehicle=0.5, Helicopter=0.12), 0.2)
    [(g, _, target, covered)] = heard.generic
    assert (g.name, target, covered) == ("Vehicle", "Helicopter", [])
    # Helicopter 0.06 (evidence 0.0105) is noise: the cars and trucks stay selected.
    [(_, _, target, covered)] = small_bridge(tmp_path, small_onto).hear(probs(Vehicle=0.5, Helicopter=0.06), 0.2).generic
    assert target == "Vehicle" and {c.name for c in covered} == {"car", "truck"}


def test_generic_descends_to_the_owner_not_to_a_concept_sharing_a_class(tmp_path, small_onto):
    # Animal heard, Dog 0.15 (evidence 0.105: not heard, but where the Animal evidence is). The cat
    # also owns a class below Dog ("Growl"), yet only the dog is selected.
    [(g, _, target, covered)] = small_bridge(tmp_path, small_onto).hear(probs(Animal=0.5, Dog=0.15), 0.2).generic
    assert (g.name, target, [c.name for c in covered]) == ("Animal", "Dog", ["dog"])


def test_heard_sounds_are_the_most_specific(tmp_path, small_onto):
    heard = small_bridge(tmp_path, small_onto).hear(probs(Animal=0.6, Dog=0.5, Bark=0.3, Silence=0.9, Music=0.4), 0.2)
    assert [n for n, _ in heard.sounds] == ["Music", "Bark"]  # Silence is not a source; Dog, Animal have Bark below


def test_sound_spread_over_siblings_names_their_parent_one_level_up_only(tmp_path, small_onto):
    bridge = small_bridge(tmp_path, small_onto)
    # Bark and Growl at 0.16: evidence (0.16 - 0.05) / 0.95 = 0.11579 each, below 0.2; Dog
    # combines them: 1 - (1 - 0.11579)^2 = 0.21817 (its own output is 0).
    heard = bridge.hear(probs(Bark=0.16, Growl=0.16), 0.2)
    assert [n for n, _ in heard.sounds] == ["Dog"]
    assert heard.sounds[0][1] == pytest.approx(0.21817, abs=1e-4)
    # Growl is also a Cat sound: the Cat family (Meow + Growl) = 0.11579, not heard.
    # Animal sees only Dog and Cat (its children), not the grandchildren: nothing to name.
    assert bridge.hear(probs(Bark=0.16, Meow=0.16), 0.2).sounds == []
    # max aggregation does not combine.
    assert small_bridge(tmp_path, small_onto, aggregate="max").hear(probs(Bark=0.16, Growl=0.16), 0.2).sounds == []


@pytest.mark.parametrize("change, match", [
    ({"concepts": {"dog": {"voc": "dog", "audioset": ["Barkk"]}}}, r"concept 'dog'.*'Barkk' is not an AudioSet ontology class.*Bark"),
    ({"concepts": {"dog": {"voc": "dog", "audioset": ["Dog"], "exclude": ["Meoww"]}}}, r"concept 'dog'.exclude.*'Meoww'"),
    ({"concepts": {"dog": {"voc": "doggo", "audioset": ["Dog"]}}}, "'doggo' is not a VOC class"),
    ({"concepts": {"dog": {"voc": "dog", "audioset": ["Dog"]}, "hound": {"voc": "dog", "audioset": ["Bark"]}}},
     "concept 'hound': duplicate concept: voc class 'dog' is already the concept 'dog'"),
    ({"concepts": {"dog": {"voc": "dog", "audioset": ["Dog"], "colour": "brown"}}}, r"unknown keys \['colour'\]"),
    ({"generic": ["Dog"]}, r"generic 'Dog' is also a class of concept\(s\) \['dog'\]"),
    ({"generic": ["Music"]}, "generic 'Music' covers no concept"),
    ({"generic": ["Vehicle", "Vehicle"]}, "listed twice"),
    ({"generic": [["Siren", "Dog"]]}, r"generic 'Siren / Dog' is also a class of concept\(s\) \['dog'\]"),
    ({"generic": [[]]}, "an empty list"),
    ({"aggregate": "mean"}, "aggregate must be one of"),
    ({"generics": ["Animal"]}, r"unknown keys \['generics'\]"),
    ({"evidence_floor": 1.5}, r"evidence_floor must be a number in \[0, 1\)"),
])
def test_bad_bridge_rejected_at_load(tmp_path, small_onto, change, match):
    with pytest.raises(ConfigError, match=match):
        small_bridge(tmp_path, small_onto, **change)


def test_duplicate_yaml_key_rejected(tmp_path, small_onto):
    path = tmp_path / "bridge.yaml"
    path.write_text("generic: [Animal]\nconcepts:\n  dog: {voc: dog, audioset: [Dog]}\n"
                    "  dog: {voc: cat, audioset: [Cat]}\n")
    with pytest.raises(ConfigError, match=r"duplicate entry 'dog' \(line 4\)"):
        SoundSourceMap.load(LABELS, path, VOC_CLASSES, COCO_CLASSES, small_onto)


# The real bridge, ontology and tagger labels.

@pytest.fixture(scope="module")
def labels(asset):
    with open(asset("audioset_labels"), newline="") as fh:
        return [row["display_name"] for row in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def real(labels, asset):
    return SoundSourceMap.load(labels, None, VOC_CLASSES, COCO_CLASSES, Ontology.load(asset("audioset_ontology")))


def test_default_bridge_covers_sounding_voc_and_household_coco(real):
    assert {c.voc for c in real.concepts if c.voc} == SOUNDING_VOC
    coco = {c.coco for c in real.concepts if c.coco}
    assert HOUSEHOLD_COCO <= coco and {"person", "dog", "car", "truck", "airplane", "motorcycle"} <= coco
    by = {c.name: c for c in real.concepts}
    assert "Chainsaw" not in by["motorbike"].classes and "Motorcycle" in by["motorbike"].classes
    assert {"Baby cry, infant cry", "Laughter", "Clapping", "Speech"} <= set(by["person"].classes)
    assert "Speech synthesizer" not in by["person"].classes


def test_real_bridge_fire_truck_outranks_vehicle(real, labels):
    p = np.zeros(len(labels), np.float32)
    p[labels.index("Vehicle")] = 0.5
    p[labels.index("Fire engine, fire truck (siren)")] = 0.3
    heard = real.hear(p, 0.2)
    assert [c.name for c, _ in heard.specific] == ["truck"] and heard.generic == []
    p[labels.index("Fire engine, fire truck (siren)")] = 0.0
    generic = {g.name: {c.name for c in cov} for g, _, _, cov in real.hear(p, 0.2).generic}
    assert generic == {"Vehicle": {"car", "truck", "bus", "motorbike", "bicycle", "skateboard", "train", "aeroplane", "boat"}}


def test_real_bridge_siren_and_emergency_vehicle_evidence_adds_up(real, labels):
    # The fire-truck scene: "Siren" 0.20 and "Emergency vehicle" 0.10, each under the threshold.
    p = np.zeros(len(labels), np.float32)
    p[labels.index("Siren")], p[labels.index("Emergency vehicle")] = 0.20, 0.10
    [(g, score, _, covered)] = real.hear(p, 0.2).generic
    assert g.roots == ("Siren", "Emergency vehicle")
    assert score == pytest.approx(1 - (1 - 0.15 / 0.95) * (1 - 0.05 / 0.95))  # 0.202216
    assert {c.name for c in covered} == {"car", "truck"}
    real.aggregate = "max"
    try:
        assert real.hear(p, 0.2).generic == []  # neither alone reaches 0.2
    finally:
        real.aggregate = "noisy_or"


def test_default_path_is_in_config_dir():
    assert DEFAULT_PATH.name == "sound_sources.yaml" and DEFAULT_PATH.is_file()
