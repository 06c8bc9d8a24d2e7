"""Few-shot training subsets: a seeded, class-stratified fraction of videos, or AVS-V3 k-shot lists."""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from ..errors import ConfigError
from .avsbench import FrameDataset, v3_rows

V3_SHOTS = (1, 3, 5)


def fraction_subset(dataset: FrameDataset, fraction: float, seed: int) -> FrameDataset:
    """Keep ``ceil(fraction * n)`` videos of every class (at least one), chosen with ``seed``."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"few-shot fraction must lie in (0, 1], got {fraction!r}")
    by_class: dict[str, list[str]] = defaultdict(list)
    for vid, cls in sorted(dataset.video_classes().items()):
        by_class[cls].append(vid)
    rng = np.random.default_rng(seed)
    keep = []
    for cls in sorted(by_class):
        vids = by_class[cls]
        n = max(1, math.ceil(fraction * len(vids)))
        keep.extend(vids[i] for i in sorted(rng.choice(len(vids), size=n, replace=False)))
    return dataset.subset_videos(keep)


def v3_shot_rows(shots: int, part: str = "train", assets_root: str | None = None) -> list[dict]:
    """Clips of the AVS-V3 k-shot split (``part`` = train or test)."""
    if shots not in V3_SHOTS or part not in ("train", "test"):
        raise ConfigError(f"AVS-V3 few-shot split needs shots in {V3_SHOTS} and part train/test, got {shots}, {part!r}")
    return v3_rows(f"v3_{shots}_shot/{part}", assets_root)
