import json

import pytest

from avs_core.errors import AssetError, ConfigError
from avs_core.ontology import Ontology


@pytest.fixture(scope="module")
def onto(asset):
    return Ontology.load(asset("audioset_ontology"))


def test_real_ontology_hierarchy(onto):
    assert len(onto.by_id) == 632
    dog = set(onto.subtree("Dog"))
    assert {"Dog", "Bark", "Yip", "Howl", "Bow-wow", "Growling", "Whimper (dog)"} == dog  # "Bay" is blacklisted
    assert "Meow" not in dog
    # A class with two parents: "Tick" is both a clock sound and a click.
    assert {"Clock", "Clicking", "Onomatopoeia"} <= onto.ancestors("Tick")
    assert {"Dog", "Domestic animals, pets", "Animal"} <= onto.ancestors("Bark")
    # Blacklisted grouping node: its children still count.
    assert "Toilet flush" in onto.subtree("Domestic sounds, home sounds")


def test_unknown_name_suggests_close_matches(onto):
    with pytest.raises(ConfigError, match=r"my entry.*'Barkk'.*Bark"):
        onto.get("Barkk", "my entry")


def _write(tmp_path, classes):
    path = tmp_path / "ontology.json"
    path.write_text(json.dumps(classes))
    return path


def _c(cid, name, children=(), restrictions=()):
    return {"id": cid, "name": name, "child_ids": list(children), "restrictions": list(restrictions)}


def test_missing_file_is_named(tmp_path):
    with pytest.raises(AssetError, match="not found.*nope.json"):
        Ontology.load(tmp_path / "nope.json")


@pytest.mark.parametrize("content, match", [
    ("{not json", "not readable JSON"),
    ('{"a": 1}', "non-empty JSON list"),
    ('[{"name": "x"}]', "entry 0 lacks id/name"),
])
def test_malformed_file_rejected(tmp_path, content, match):
    path = tmp_path / "ontology.json"
    path.write_text(content)
    with pytest.raises(AssetError, match=match):
        Ontology.load(path)


def test_cycle_rejected_with_its_path(tmp_path):
    path = _write(tmp_path, [_c("/a", "A", ["/b"]), _c("/b", "B", ["/c"]), _c("/c", "C", ["/a"])])
    with pytest.raises(AssetError, match="cycle in child_ids: (A -> B -> C -> A|B -> C -> A -> B|C -> A -> B -> C)"):
        Ontology.load(path)


def test_unknown_child_and_duplicate_name_rejected(tmp_path):
    with pytest.raises(AssetError, match="'A' lists unknown child ids"):
        Ontology.load(_write(tmp_path, [_c("/a", "A", ["/zz"])]))
    with pytest.raises(AssetError, match="'A' appears twice"):
        Ontology.load(_write(tmp_path, [_c("/a", "A"), _c("/b", "A")]))
