"""Answer parsing, the TeSO-n noun parser and the sounding-object vocabulary."""
from __future__ import annotations

import pytest

from avs_core.cues.nouns import extract_nouns
from avs_core.cues.parser import parse_answer
from avs_core.cues.vocabulary import AUDIOSET_EVENTS, AUDIOSET_OBJECTS, Vocabulary, read_audioset_labels

from conftest import asset_path


@pytest.fixture(scope="module")
def vocab():
    return Vocabulary.build(read_audioset_labels(asset_path("audioset_labels")))


# (LLM answer, expected cues, expected method) — shapes of output seen from real chat models.
ANSWERS = [
    (  # followed the CoT format exactly
        "Objects: man, guitar, dog, sofa.\nCategories: people (man); instruments (guitar); animals (dog).\n"
        "Can sound: the man sings, the guitar is strummed, the dog is asleep.\nSound together: man and guitar.\n"
        "Sounding objects: man, guitar",
        ["man", "guitar"], "strict"),
    (  # markdown bold, plurals, articles, qualifiers, duplicates
        "**Sounding objects:** The Dogs (barking), a puppy, two acoustic guitars, dog",
        ["dog", "guitar"], "strict"),
    ("Let me think.\nThe room is empty and the piano lid is closed.\nSounding objects: none", [], "none"),
    ("Answer: There are no sounding objects in this scene.", [], "none"),
    ("Sounding objects: none of these objects would be making a sound right now", [], "none"),
    (  # JSON in a code fence
        'Here is the result:\n```json\n{"sounding_objects": ["Woman", "violin", "cello"]}\n```',
        ["woman", "violin", "cello"], "json"),
    ('["car", "ambulance", "motorcycle", "bus", "truck", "helicopter", "train"]',
     ["car", "ambulance", "motorcycle", "bus", "truck"], "json"),  # capped at N_T = 5
    (  # numbered list without the answer line
        "The potential sounding objects are:\n1. A man singing\n2. The electric guitar\n3. Drums\n",
        ["man", "guitar", "drum"], "list"),
    (  # open vocabulary: an object our lists lack survives as a short name
        "Sounding objects: kettle, cat", ["kettle", "cat"], "strict"),
    ("I'm sorry, but I cannot determine which objects make sounds from this description.", [], "refusal"),
    ("", [], "empty"),
    (  # prose ramble, no format: vocabulary nouns of the prose, limited to the caption's
        "Well, the scene has a lady who may be talking and perhaps a parrot squawking, while a tiger sleeps.",
        ["woman", "parrot"], "prose"),
]


@pytest.mark.parametrize("answer,expected,method", ANSWERS)
def test_parse_realistic_answers(vocab, answer, expected, method):
    caption = "A woman stands next to a parrot on a perch in a kitchen."
    parsed = parse_answer(answer, max_cues=5, vocab=vocab, caption=caption)
    assert parsed.texts == expected
    assert parsed.method == method


def test_rambling_answer_falls_back_to_caption_nouns(vocab):
    caption = "A man playing an acoustic guitar next to a barking dog"
    garbage = "corner none lid refrigerator if rich flowers past around so which city"
    parsed = parse_answer(garbage, max_cues=5, vocab=vocab, caption=caption)
    assert parsed.method == "prose" and not parsed.followed_format
    assert parsed.texts == ["man", "guitar", "dog"]


def test_last_answer_line_wins(vocab):
    text = "Format: 'Sounding objects: <names>'.\nSounding objects: horse"
    assert parse_answer(text, 5, vocab).texts == ["horse"]


CAPTIONS = [
    ("A man playing an acoustic guitar next to a barking dog", ["man", "guitar", "dog"]),
    ("Two women are singing while a boy plays the drums on a stage.", ["woman", "boy", "drum"]),
    ("A man saw a log with a chainsaw in the forest.", ["man", "chainsaw"]),  # 'saw' is a verb here
    ("A girl is trying to train her puppy in the garden while geese fly overhead.", ["girl", "dog", "goose"]),
    ("The image shows a red fire truck with its siren on and people walking on the sidewalk.",
     ["fire truck", "siren", "person"]),
    ("An empty living room with a piano, a sofa and a television that is turned off.", ["piano", "tv"]),
    ("A close-up of a harmonica and two hair-dryers on a table.", ["harmonica", "hair dryer"]),
    ("A quiet mountain lake at dawn with mist over the water.", []),
]


@pytest.mark.parametrize("caption,expected", CAPTIONS)
def test_noun_parser_on_captions(vocab, caption, expected):
    assert extract_nouns(caption, vocab) == expected


def test_noun_parser_caps_at_max(vocab):
    caption = "A band with a man, a woman, a guitar, a violin, a piano, drums and a trumpet."
    assert extract_nouns(caption, vocab, max_cues=3) == ["man", "woman", "guitar"]


def test_vocabulary_from_audioset_labels(vocab):
    labels = read_audioset_labels(asset_path("audioset_labels"))
    assert len(labels) == 527
    # Every curated display name exists in the real class list (no typos, no stale labels).
    assert not (set(AUDIOSET_OBJECTS) | set(AUDIOSET_EVENTS)) - set(labels)
    assert vocab.cue_for_label("Bark") == "dog"
    assert vocab.cue_for_label("Male speech, man speaking") == "man"
    assert vocab.cue_for_label("Violin, fiddle") == "violin"
    assert vocab.cue_for_label("Inside, small room") is None
    assert vocab.cue_for_label("Jazz") is None
    # Surface forms from all sources: AudioSet alternatives, VOC/COCO names, AVSBench categories.
    assert vocab.terms["fiddle"] == "violin"
    assert vocab.terms["motorbike"] == "motorcycle"
    assert vocab.terms["tv"] == "tv"
    assert vocab.terms["vacuum cleaner"] == "vacuum cleaner"
    # Event words are never text surface forms ("bark" of a tree is not a dog).
    assert "bark" not in vocab.terms


def test_vocabulary_without_audioset():
    vocab = Vocabulary.build(None)
    assert vocab.terms["guitar"] == "guitar" and not vocab.label_to_cue
