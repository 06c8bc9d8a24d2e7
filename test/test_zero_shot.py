"""The zero-shot joint audio-visual decision.

Unit tests script the tagger's probabilities and the vision backends' findings
(so the decision rule itself is under test, with the real bridge and ontology);
integration tests run the real models on the shared real recordings and photos.
"""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from avs_core.audio.tagger import TagResult
from avs_core.media import iter_windows
from avs_core.ontology import Ontology
from avs_core.pipeline import AVSPipeline, pipeline_config
from avs_core.sound_sources import SoundSourceMap
from avs_core.types import Window
from avs_core.vision.base import ClassMaps
from avs_core.vision.classes import COCO_CLASSES, VOC_CLASSES
from avs_core.vision.yolox import Detection
from avs_core.zero_shot import ZeroShotSegmenter

from conftest import white_noise

H, W = 60, 80


@pytest.fixture(scope="module")
def labels(asset):
    with open(asset("audioset_labels"), newline="") as fh:
        return [row["display_name"] for row in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def onto(asset):
    return Ontology.load(asset("audioset_ontology"))


@pytest.fixture(scope="module")
def bridge(labels, onto):
    return SoundSourceMap.load(labels, None, VOC_CLASSES, COCO_CLASSES, onto)


class ScriptedTagger:
    def __init__(self, labels):
        self.labels, self.probs, self.calls = labels, np.zeros(len(labels), np.float32), 0
        self.heard = None  # the audio of the last call

    def set(self, **named):
        self.probs = np.zeros(len(self.labels), np.float32)
        for name, p in named.items():
            self.probs[self.labels.index(name)] = p

    def tag(self, audio, sr):
        self.calls += 1
        self.heard = np.asarray(audio)
        return TagResult(self.probs.copy(), np.zeros(8, np.float32), self.labels)


class ScriptedDeepLab:
    def __init__(self):
        self.maps, self.calls = {}, 0

    def segment(self, rgb):
        self.calls += 1
        return ClassMaps("voc", rgb.shape[:2], dict(self.maps))


class ScriptedYolox:
    def __init__(self):
        self.found, self.calls = [], 0

    def instances(self, rgb, timings=None):
        self.calls += 1
        out = []
        for label, score, (x0, y0, x1, y1) in self.found:
            region = np.zeros(rgb.shape[:2], bool)
            region[y0:y1, x0:x1] = True
            out.append((Detection(label, score, (x0, y0, x1, y1)), region))
        return out


def region(y0, y1, x0, x1, conf):
    m = np.zeros((H, W), np.float32)
    m[y0:y1, x0:x1] = conf
    return m


@pytest.fixture
def scripted(labels, bridge):
    tagger, deeplab, yolox = ScriptedTagger(labels), ScriptedDeepLab(), ScriptedYolox()
    seg = ZeroShotSegmenter(tagger, bridge, deeplab, yolox, audio_threshold=0.2)
    return seg, tagger, deeplab, yolox


def run(seg, frame=None):
    frame = np.zeros((H, W, 3), np.uint8) if frame is None else frame
    return seg.segment(frame, white_noise(1.0, 16000), 16000)


def test_heard_and_seen_is_chosen(scripted):
    seg, tagger, deeplab, _ = scripted
    tagger.set(Dog=0.7, Bark=0.6)
    deeplab.maps = {"dog": region(10, 30, 10, 40, 0.9), "person": region(40, 60, 0, 80, 0.9)}
    out = run(seg)
    assert [n for n, _ in out.labels] == ["dog"]  # the person is visible but not heard
    assert out.heard_not_visible == []
    np.testing.assert_array_equal(out.heatmap, region(10, 30, 10, 40, 0.9))


def test_heard_but_not_visible_is_named_and_masks_nothing(scripted, onto):
    seg, tagger, deeplab, _ = scripted
    tagger.set(Dog=0.7, Bark=0.6)
    deeplab.maps = {"cat": region(10, 30, 10, 40, 0.9)}
    out = run(seg)
    assert out.labels == [] and not out.heatmap.any() and out.instances == []
    assert out.heard_not_visible == ["Bark"]  # the most specific heard class (Dog is its parent)
    # A sound no vision class covers.
    tagger.set(**{"Lawn mower": 0.6, "Engine": 0.3})
    out = run(seg)
    assert out.heard_not_visible == ["Lawn mower"] and not out.heatmap.any()


def test_several_sources_ranked_by_audio_times_visual(scripted):
    seg, tagger, deeplab, _ = scripted
    deeplab.maps = {"person": region(0, 30, 0, 40, 0.95), "dog": region(30, 60, 40, 80, 0.6)}
    # Evidence = (p - 0.05) / 0.95. Dog: 0.85/0.95 x 0.6 = 0.537 > person: 0.45/0.95 x 0.95 = 0.45.
    tagger.set(Speech=0.5, Bark=0.9)
    out = run(seg)
    assert [(n, round(s, 3)) for n, s in out.labels] == [("dog", 0.537), ("person", 0.45)]
    # Dog: 0.55/0.95 x 0.6 = 0.347 < person 0.45: the order follows the joint score.
    tagger.set(Speech=0.5, Bark=0.6)
    assert [n for n, _ in run(seg).labels] == ["person", "dog"]


def test_generic_evidence_selects_visible_vehicles_only_when_nothing_specific(scripted):
    seg, tagger, deeplab, yolox = scripted
    deeplab.maps = {"car": region(0, 20, 0, 30, 0.8), "person": region(30, 60, 0, 20, 0.9)}
    yolox.found = [("truck", 0.7, (40, 20, 80, 60))]
    tagger.set(Vehicle=0.4)  # generic only: the visible car (and truck) are the candidates
    out = run(seg)
    assert {n for n, _ in out.labels} == {"car", "truck"}
    # A fire-truck siren is more specific: it selects the truck, and the car is no longer chosen.
    tagger.set(Vehicle=0.4, **{"Fire engine, fire truck (siren)": 0.35})
    out = run(seg)
    assert [n for n, _ in out.labels] == ["truck"]
    assert out.heatmap[5, 5] == 0 and out.heatmap[30, 60] == pytest.approx(0.7)
    # Vehicle evidence whose own detail points at aircraft (below threshold) selects no car.
    tagger.set(Vehicle=0.5, Aircraft=0.12, **{"Propeller, airscrew": 0.1})
    out = run(seg)
    assert out.labels == [] and out.heard_not_visible and "Vehicle" not in out.heard_not_visible


def test_fire_truck_siren_among_parked_cars_and_a_bystander(scripted):
    # The scene: "Siren" 0.20 and "Emergency vehicle" 0.10 each under the threshold, "Speech" 0.41.
    seg, tagger, deeplab, yolox = scripted
    deeplab.maps = {"car": region(0, 20, 0, 30, 0.8), "person": region(30, 60, 0, 20, 0.9)}
    yolox.found = [("truck", 0.7, (40, 20, 80, 60))]
    tagger.set(Siren=0.20, **{"Emergency vehicle": 0.10, "Speech": 0.41})
    out = run(seg)
    # Both the siren's vehicles and the talker are chosen, each at audio x visual.
    assert {n for n, _ in out.labels} == {"truck", "car", "person"}
    assert out.heatmap[40, 60] == pytest.approx(0.7) and out.heard_not_visible == []


def test_instances_per_component_and_per_detection(scripted):
    seg, tagger, deeplab, yolox = scripted
    # Two dogs, a 2x4 fragment (a paw) just below the second, a 1-pixel speckle far away.
    two_dogs = region(5, 25, 5, 25, 0.9) + region(35, 55, 50, 75, 0.7) + region(56, 58, 60, 64, 0.5)
    two_dogs[0, 79] = 0.6
    deeplab.maps = {"dog": two_dogs}
    yolox.found = [("keyboard", 0.8, (0, 0, 10, 10)), ("keyboard", 0.5, (60, 0, 80, 10)), ("dog", 0.9, (0, 0, 80, 60))]
    tagger.set(Bark=0.8, Typing=0.7)
    out = run(seg)
    dogs = [i for i in out.instances if i.label == "dog"]
    keys = [i for i in out.instances if i.label == "keyboard"]
    # DeepLab has the dog: its two components, not YOLOX's box; keyboards come from YOLOX boxes.
    assert sorted(i.box for i in dogs) == [(5.0, 5.0, 25.0, 25.0), (50.0, 35.0, 75.0, 58.0)]
    assert sum(int(i.mask.sum()) for i in dogs) == 400 + 500 + 8
    assert {i.source for i in dogs} == {"deeplab"} and {i.source for i in keys} == {"yolox"}
    assert sorted((i.visual, int(i.mask.sum())) for i in keys) == [(0.5, 200), (0.8, 100)]
    assert [round(i.visual, 3) for i in sorted(dogs, key=lambda i: i.box)] == [0.9, round((500 * 0.7 + 8 * 0.5) / 508, 3)]
    np.testing.assert_array_equal(out.heatmap, np.max([i.prob for i in out.instances], axis=0))
    assert [i.score for i in out.instances] == sorted((i.score for i in out.instances), reverse=True)


def test_vision_runs_only_when_a_visible_source_is_heard(scripted):
    seg, tagger, deeplab, yolox = scripted
    tagger.set(Music=0.9)
    out = run(seg)
    assert deeplab.calls == 0 and yolox.calls == 0 and out.heard_not_visible == ["Music"]


def test_mask_threshold_changes_the_mask_at_run_time(scripted):
    seg, tagger, deeplab, _ = scripted
    tagger.set(Speech=0.8)
    deeplab.maps = {"person": region(0, 30, 0, 80, 0.9) + region(30, 60, 0, 80, 0.4)}
    pipe = AVSPipeline(seg, pipeline_config({}))
    win = Window(np.zeros((H, W, 3), np.uint8), white_noise(1.0, 16000), 16000)
    res = pipe(win)
    assert res.mask[:30].all() and not res.mask[30:].any()  # 0.4 < mask_threshold 0.5
    pipe.update(mask_threshold=0.3)
    assert pipe(win).mask.all()
    pipe.update(mask_threshold=0.95)
    assert not pipe(win).mask.any() and pipe(win).labels  # chosen, but no pixel that sure


def test_the_tagger_hears_its_context_and_the_gate_only_the_window(scripted):
    seg, tagger, deeplab, _ = scripted
    tagger.set(Speech=0.8)
    deeplab.maps = {"person": region(0, 60, 0, 80, 0.9)}
    pipe = AVSPipeline(seg, pipeline_config({"tagger_context_s": 2.0}))
    frame = np.zeros((H, W, 3), np.uint8)
    rng = np.random.default_rng(1)
    audio = rng.uniform(-0.5, 0.5, 3 * 16000).astype(np.float32)
    assert pipe(Window(frame, audio, 16000)).mask.all()
    np.testing.assert_allclose(tagger.heard, audio[16000:], atol=1e-6)  # the last 2 s, sample for sample
    pipe(Window(frame, audio[:24000], 16000))  # a recording's first 1.5 s: all of it, no silence padded in
    np.testing.assert_allclose(tagger.heard, audio[:24000], atol=1e-6)
    pipe.update(tagger_context_s=0.5)  # shorter than the window: the window
    pipe(Window(frame, audio, 16000))
    np.testing.assert_allclose(tagger.heard, audio[-16000:], atol=1e-6)
    # Sound in the context but a silent window: the gate decides on the window, the tagger is not asked.
    pipe.update(tagger_context_s=2.0)
    calls = tagger.calls
    res = pipe(Window(frame, np.concatenate([audio[:16000], np.zeros(16000, np.float32)]), 16000))
    assert res.silent and not res.mask.any() and tagger.calls == calls


def test_warmup_runs_every_backend(scripted):
    seg, tagger, deeplab, yolox = scripted
    AVSPipeline(seg, pipeline_config({})).warmup()
    assert (tagger.calls, deeplab.calls, yolox.calls) == (1, 1, 1)


# Real models, real recordings, real photos.

def windows(asset, photo, clip, span_s=2.0):
    """1 s windows a second apart, each with up to ``span_s`` of audio (the default tagger context)."""
    return list(iter_windows(asset(photo), asset(f"real_sounds/{clip}"), 1.0, 1.0, span_s=span_s))


def test_real_dog_bark_with_two_dogs(zero_shot_pipeline, asset):
    res = zero_shot_pipeline(windows(asset, "pets", "dog_bark_esc10_2-117271-A.ogg")[0])
    assert [n for n, _ in res.labels] == ["dog"] and res.mask.any()
    assert len([i for i in res.instances if i.label == "dog"]) == 2  # one per dog
    assert res.heard_not_visible == []


def test_real_dog_bark_without_a_dog_is_an_honest_miss(zero_shot_pipeline, asset, onto):
    res = zero_shot_pipeline(windows(asset, "cat", "dog_bark_esc10_2-117271-A.ogg")[0])
    assert not res.mask.any() and res.labels == []
    assert res.heard_not_visible and set(res.heard_not_visible) <= set(onto.subtree("Dog"))


def dog_sounds(onto) -> set[str]:
    """Honest names for a dog's bark: its classes, the wild canids' and the generic nodes above "Dog"."""
    return set(onto.subtree("Domestic animals, pets")) | set(onto.subtree("Canidae, dogs, wolves")) | onto.ancestors("Dog")


def test_real_dog_recording_never_masks_the_cat_at_any_offset(zero_shot_pipeline, asset, onto):
    # Quarter-second steps: the window ending at 2.5 s hears "Animal" and "Domestic animals, pets" with
    # "Dog" under the threshold; that evidence leads to the dog (not to the cat, which shares "Growling").
    for w in iter_windows(asset("cat"), asset("real_sounds/dog_bark_esc10_3-155312-A.ogg"), 1.0, 0.25, span_s=2.0):
        res = zero_shot_pipeline(w)
        assert not res.mask.any() and res.labels == [], (w.t_end, res.labels, res.info["audio_tags"])
        assert res.heard_not_visible and set(res.heard_not_visible) <= dog_sounds(onto), (w.t_end, res.heard_not_visible)


def test_real_car_engine_reaches_the_cars_through_vehicle(zero_shot_pipeline, asset):
    # Tags "Vehicle" 0.23, "Clatter", "Engine": only generic vehicle evidence.
    res = zero_shot_pipeline(windows(asset, "traffic_0002", "car_engine_antum.flac")[0])
    assert res.labels and res.labels[0][0] == "car" and res.mask.any()


def test_cli_summary_and_overlay_carry_heard_not_visible(asset, tmp_path, onto):
    proc = subprocess.run([sys.executable, "-m", "avs_core.cli", "segment", str(asset("cat")), "--audio",
                           str(asset("real_sounds/dog_bark_esc10_3-155312-A.ogg")), "--out", str(tmp_path),
                           "--max-windows", "2"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "cat_summary.json").read_text())
    for entry in summary["windows"]:
        assert entry["mask_fraction"] == 0 and entry["labels"] == []
        assert entry["heard_not_visible"] and set(entry["heard_not_visible"]) <= dog_sounds(onto)
    assert (tmp_path / "cat_0001_overlay.png").is_file()


def test_overlay_writes_the_heard_not_visible_line():
    from avs_core.visualize import overlay

    rgb = np.full((240, 320, 3), 128, np.uint8)
    empty = np.zeros((240, 320), bool)
    plain = overlay(rgb, empty, np.zeros((240, 320), np.float32))
    named = overlay(rgb, empty, np.zeros((240, 320), np.float32), heard_not_visible=["Lawn mower"])
    first_line = np.flatnonzero((plain != rgb).any(axis=(1, 2)))  # "no sounding object"
    second_line = np.flatnonzero((plain != named).any(axis=(1, 2)))
    assert first_line.size and second_line.size and second_line.min() > first_line.max()


def test_bad_bridge_fails_when_the_pipeline_loads(tmp_path, asset):
    from avs_core.errors import ConfigError

    asset("efficientat_mn04")
    bad = tmp_path / "bridge.yaml"
    bad.write_text("concepts:\n  dog: {voc: dog, audioset: [Barking dog]}\n")
    with pytest.raises(ConfigError, match=r"concept 'dog'.*'Barking dog' is not an AudioSet ontology class"):
        AVSPipeline.from_config({"device": "cpu", "sound_sources": str(bad)})


def test_yolox_instances_are_the_detections_with_their_box_regions(asset):
    from avs_core.image import read_image
    from avs_core.vision.yolox import YoloxCOCO

    yolox = YoloxCOCO.from_config({})
    rgb = read_image(asset("yolox_dog"))  # a dog, a bicycle and a pickup truck
    found = yolox.instances(rgb)
    assert [d for d, _ in found] == yolox.detect(rgb) and {"dog", "bicycle"} <= {d.label for d, _ in found}
    for det, region in found:
        x0, y0, x1, y1 = det.box
        ys, xs = np.nonzero(region)
        assert region.shape == rgb.shape[:2]
        assert abs(xs.min() - x0) <= 1 and abs(xs.max() + 1 - x1) <= 1 and abs(ys.min() - y0) <= 1 and abs(ys.max() + 1 - y1) <= 1
        assert region.sum() == (xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1)  # a filled rectangle
