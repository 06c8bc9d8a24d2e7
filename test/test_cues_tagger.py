"""Audio-tagger cue fallback: labels -> sounding objects, with fake tags and the real tagger."""
from __future__ import annotations

import numpy as np
import pytest

from avs_core.cues.tagger_cues import TaggerCueProvider, tags_to_cues
from avs_core.cues.vocabulary import Vocabulary, read_audioset_labels

from conftest import asset_path


@pytest.fixture(scope="module")
def vocab():
    return Vocabulary.build(read_audioset_labels(asset_path("audioset_labels")))


def test_tags_map_to_objects(vocab):
    tags = [("Music", 0.9), ("Bark", 0.5), ("Guitar", 0.4), ("Dog", 0.35), ("Inside, small room", 0.3),
            ("Male speech, man speaking", 0.2), ("Piano", 0.01)]
    # Music and room tone name no object; Bark and Dog give one cue; low scores are dropped.
    assert tags_to_cues(tags, vocab, min_score=0.05, max_cues=5) == ["dog", "guitar", "man"]
    assert tags_to_cues(tags, vocab, min_score=0.05, max_cues=2) == ["dog", "guitar"]
    assert tags_to_cues(tags, vocab, min_score=0.95, max_cues=5) == []


def test_provider_with_tag_function(vocab):
    calls = []

    def tag_fn(samples, sr):
        calls.append((len(samples), sr))
        return [("Meow", 0.7), ("Speech", 0.3)]

    provider = TaggerCueProvider(tag_fn, max_cues=5, vocabulary=vocab)
    cues = provider(np.zeros((4, 4, 3), np.uint8), np.zeros(16000, np.float32), 16000, stamp=3.0)
    assert cues.texts == ("cat", "person") and cues.source == "audio-tagger" and cues.stamp == 3.0
    assert calls == [(16000, 16000)]
    # No audio -> no cues, and the tagger is not called.
    assert provider(None, None, None).texts == ()
    assert len(calls) == 1


def test_real_tagger_on_shared_audio(vocab):
    import soundfile as sf

    asset_path("efficientat_mn04")
    provider = TaggerCueProvider.from_assets(vocabulary=vocab)
    audio, sr = sf.read(asset_path("typing"), dtype="float32")
    cues = provider(None, audio[:sr], sr, stamp=0.0)
    assert "keyboard" in cues.texts
    silence = provider(None, np.zeros(sr, np.float32), sr)
    assert silence.texts == ()
