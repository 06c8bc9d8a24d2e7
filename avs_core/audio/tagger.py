"""AudioSet tagging: what is sounding, as 527 class probabilities plus an embedding."""
from __future__ import annotations

import csv
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from .. import assets
from ..device import resolve_device
from ..errors import AssetError
from .efficientat import SAMPLE_RATE, EfficientAT
from .frontend import AudioFrontend

NUM_CLASSES = 527
# Shorter clips are zero-padded to one STFT frame so the model always has input to look at.
_MIN_SAMPLES = 1024


@dataclass
class TagResult:
    """Tagger output for one clip: probs (527,) float32, embedding (D,) float32."""

    probs: np.ndarray
    embedding: np.ndarray
    labels: Sequence[str] = field(repr=False)

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The k most probable classes as (display name, probability), best first."""
        order = np.argsort(-self.probs, kind="stable")[: max(0, int(k))]
        return [(self.labels[i], float(self.probs[i])) for i in order]


def load_labels(path: str | os.PathLike) -> list[str]:
    """AudioSet display names in model output order from class_labels_indices.csv."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise AssetError(f"cannot read AudioSet labels {path}: {exc}") from None
    try:
        by_index = {int(r["index"]): r["display_name"].strip() for r in rows}
    except (KeyError, TypeError, ValueError):
        raise AssetError(f"{path} is not an AudioSet class_labels_indices.csv (columns index,mid,display_name)") from None
    if sorted(by_index) != list(range(NUM_CLASSES)):
        raise AssetError(f"{path} must list classes 0..{NUM_CLASSES - 1} once each, found {len(by_index)} entries")
    return [by_index[i] for i in range(NUM_CLASSES)]


class AudioTagger:
    """EfficientAT mn04 AudioSet tagger with its input front-end (any rate / channel count in)."""

    def __init__(self, model: EfficientAT, labels: Sequence[str], device: str | torch.device = "cpu"):
        self.device = resolve_device(device, strict=True)
        self.model = model.to(self.device).eval()
        self.labels = list(labels)
        self.frontend = AudioFrontend(sample_rate=SAMPLE_RATE)

    @classmethod
    def from_assets(cls, assets_root: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> AudioTagger:
        return cls.from_files(
            assets.resolve("efficientat_mn04", assets_root), assets.resolve("audioset_labels", assets_root), device
        )

    @classmethod
    def from_files(cls, weights: str | os.PathLike, labels_csv: str | os.PathLike,
                   device: str | torch.device = "cpu") -> AudioTagger:
        labels = load_labels(labels_csv)
        return cls(EfficientAT.from_checkpoint(weights, width_mult=0.4, num_classes=len(labels)), labels, device)

    @property
    def embedding_dim(self) -> int:
        return self.model.embedding_dim

    def tag(self, samples, sample_rate) -> TagResult:
        """Tag one clip (shape/dtype rules of ``to_mono_float``); the whole clip is pooled."""
        return self.tag_batch([samples], sample_rate)[0]

    def tag_batch(self, clips: Sequence, sample_rate) -> list[TagResult]:
        """Tag several clips sharing one sample rate; equal-length clips run as one batch."""
        waves = [self.frontend.prepare(c, sample_rate) for c in clips]
        by_length: dict[int, list[int]] = defaultdict(list)
        for i, w in enumerate(waves):
            by_length[max(len(w), _MIN_SAMPLES)].append(i)
        results: list[TagResult | None] = [None] * len(waves)
        with torch.inference_mode():
            for length, idx in by_length.items():
                batch = torch.zeros(len(idx), length)
                for row, i in enumerate(idx):
                    batch[row, : len(waves[i])] = torch.from_numpy(waves[i])
                probs, emb = self.model(batch.to(self.device))
                probs, emb = probs.float().cpu().numpy(), emb.float().cpu().numpy()
                for row, i in enumerate(idx):
                    results[i] = TagResult(probs[row], emb[row], self.labels)
        return results  # type: ignore[return-value]
