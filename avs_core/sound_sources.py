"""The semantic bridge from AudioSet sounds to visible object classes (config/sound_sources.yaml)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import CONFIG_DIR, load_yaml
from .errors import ConfigError

DEFAULT_PATH = CONFIG_DIR / "sound_sources.yaml"


@dataclass(frozen=True)
class Concept:
    name: str
    voc: str | None
    coco: str | None
    audio_indices: tuple[int, ...]
    threshold: float | None


class SoundSourceMap:
    """Scores each visual concept by how strongly the audio says it is sounding."""

    def __init__(self, concepts: Sequence[Concept]):
        self.concepts = list(concepts)

    @classmethod
    def load(cls, audio_labels: Sequence[str], path: str | Path | None = None,
             voc_classes: Sequence[str] = (), coco_classes: Sequence[str] = ()) -> "SoundSourceMap":
        path = Path(path) if path else DEFAULT_PATH
        raw = load_yaml(path).get("concepts")
        if not isinstance(raw, dict) or not raw:
            raise ConfigError(f"{path}: expected a non-empty 'concepts' mapping")
        index = {label: i for i, label in enumerate(audio_labels)}
        concepts = []
        for name, entry in raw.items():
            if not isinstance(entry, dict) or not entry.get("audioset"):
                raise ConfigError(f"{path}: concept {name!r} needs an 'audioset' list")
            unknown = [a for a in entry["audioset"] if a not in index]
            if unknown:
                raise ConfigError(f"{path}: concept {name!r} names unknown AudioSet classes {unknown}")
            voc, coco = entry.get("voc"), entry.get("coco")
            if voc is None and coco is None:
                raise ConfigError(f"{path}: concept {name!r} needs a 'voc' or 'coco' class")
            if voc is not None and voc_classes and voc not in voc_classes:
                raise ConfigError(f"{path}: concept {name!r}: {voc!r} is not a VOC class")
            if coco is not None and coco_classes and coco not in coco_classes:
                raise ConfigError(f"{path}: concept {name!r}: {coco!r} is not a COCO class")
            thr = entry.get("threshold")
            concepts.append(Concept(str(name), voc, coco, tuple(index[a] for a in entry["audioset"]),
                                    None if thr is None else float(thr)))
        return cls(concepts)

    def sounding(self, probs: np.ndarray, threshold: float) -> list[tuple[Concept, float]]:
        """Concepts whose audio score reaches their threshold, best first."""
        out = []
        for c in self.concepts:
            score = float(np.max(probs[list(c.audio_indices)]))
            if score >= (c.threshold if c.threshold is not None else threshold):
                out.append((c, score))
        return sorted(out, key=lambda cs: -cs[1])
