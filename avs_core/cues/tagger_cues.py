"""Cues from the audio tagger: the objects that make the sounds it hears.

The cheapest backend: no captioner or LLM, only the AudioSet tagger that the
pipeline runs anyway. AudioSet labels are mapped to object names through the
sounding-object vocabulary ("Bark" -> "dog", "Male speech, man speaking" -> "man");
labels with no object ("Music", "Inside, small room") give no cue. Silence -> no cues.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .types import CueProvider, Cues
from .vocabulary import Vocabulary, default_vocabulary

TagFn = Callable[[np.ndarray, int], Sequence[tuple[str, float]]]


def tags_to_cues(tags: Sequence[tuple[str, float]], vocab: Vocabulary, min_score: float, max_cues: int) -> list[str]:
    """Object cues for (label, score) tags, best score first, deduplicated."""
    cues: list[str] = []
    for label, score in sorted(tags, key=lambda t: -float(t[1])):
        if float(score) < min_score:
            break
        cue = vocab.cue_for_label(label)
        if cue and cue not in cues:
            cues.append(cue)
            if len(cues) == max_cues:
                break
    return cues


class TaggerCueProvider(CueProvider):
    """Wraps any ``tag_fn(samples, sample_rate) -> [(label, score)]``.

    The frames are ignored; audio-less calls give no cues.
    """

    source = "audio-tagger"
    uses_frames = False
    uses_audio = True

    def __init__(
        self,
        tag_fn: TagFn,
        max_cues: int = 5,
        min_score: float = 0.1,
        vocabulary: Vocabulary | None = None,
    ):
        self.tag_fn = tag_fn
        self.max_cues = int(max_cues)
        self.min_score = float(min_score)
        self.vocab = vocabulary or default_vocabulary()

    @classmethod
    def from_assets(cls, top_k: int = 10, **kwargs) -> TaggerCueProvider:
        """Uses the shared EfficientAT AudioSet tagger (avs_core.audio.tagger)."""
        from ..audio.tagger import AudioTagger  # imported lazily: torch model load

        tagger = AudioTagger.from_assets()
        return cls(lambda samples, sr: tagger.tag(samples, sr).top(top_k), **kwargs)

    def compute_batch(self, frames, audios, sample_rate, stamps) -> list[Cues]:
        out = []
        for audio, stamp in zip(audios, stamps):
            if audio is None or sample_rate is None or np.asarray(audio).size == 0:
                texts: list[str] = []
            else:
                texts = tags_to_cues(self.tag_fn(audio, int(sample_rate)), self.vocab, self.min_score, self.max_cues)
            out.append(Cues(tuple(texts), self.source, stamp, age_s=0.0))
        return out
