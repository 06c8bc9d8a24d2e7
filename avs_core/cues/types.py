"""Scene text cues: the short list of potential sounding objects TeSO conditions on."""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from ..errors import ConfigError

# TeSO pads a short cue list to N_T entries; padded slots carry this text and are masked out.
PAD_CUE = "None"


@dataclass(frozen=True)
class Cues:
    """Cue texts for one frame.

    texts: potential sounding objects, most confident first, deduplicated, no padding.
    source: backend that produced them ("captioner+reasoner", "captioner+nouns",
        "audio-tagger", "detector:coco", ...; "none" before any were computed).
    stamp: stream time (s) of the frame/audio the cues were computed from; None if none yet.
    age_s: how old the cues are relative to the newest input (s); inf if none yet.
    caption: the dense caption they were reasoned from, when a captioner ran (diagnostics).
    """

    texts: tuple[str, ...]
    source: str
    stamp: float | None = None
    age_s: float = math.inf
    caption: str | None = None

    def padded(self, n: int, pad: str = PAD_CUE) -> list[str]:
        """Exactly ``n`` texts: truncated, or padded with ``pad`` (TeSO's fixed N_T slots)."""
        return pad_cues(self.texts, n, pad)

    def aged(self, now: float | None) -> Cues:
        """A copy whose age is measured against stream time ``now``."""
        if self.stamp is None or now is None:
            return replace(self, age_s=math.inf)
        return replace(self, age_s=max(0.0, float(now) - self.stamp))


def pad_cues(texts, n: int, pad: str = PAD_CUE) -> list[str]:
    if n < 1:
        raise ConfigError(f"number of cue slots (N_T) must be >= 1, got {n}")
    out = list(texts)[:n]
    return out + [pad] * (n - len(out))


NO_CUES = Cues(texts=(), source="none")


class CueProvider(ABC):
    """A backend turning frames (and/or audio) into Cues; ``source`` names it in every result."""

    source: str = "none"
    # Which inputs the backend reads (offline tools skip loading the other one).
    uses_frames: bool = True
    uses_audio: bool = False

    @abstractmethod
    def compute_batch(
        self,
        frames: Sequence[np.ndarray | None],
        audios: Sequence[np.ndarray | None],
        sample_rate: int | None,
        stamps: Sequence[float | None],
    ) -> list[Cues]:
        """Cues for each (frame, audio) pair; a backend ignores the modality it does not use."""

    def __call__(
        self,
        frame_rgb: np.ndarray | None,
        audio: np.ndarray | None = None,
        sample_rate: int | None = None,
        stamp: float | None = None,
    ) -> Cues:
        return self.compute_batch([frame_rgb], [audio], sample_rate, [stamp])[0]
