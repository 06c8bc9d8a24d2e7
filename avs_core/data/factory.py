"""Build a frame dataset from the ``data`` section of a training / evaluation config.

    data:
      kind: synthetic | avss | s4 | ms3 | v3
      root: /path/to/dataset          # not for synthetic
      synthetic: {seed: 0, size: 128, clips: {...}}   # SynthConfig keys
      cue_cache: /path/cues.json      # optional; synthetic and written sets carry their own
      fewshot: {fraction: 0.1} | {shots: 3}           # training split only

For ``kind: v3`` the split names are the AVS-V3 CSVs (``meta_v3_seen_train``,
``meta_v3_seen_val``, ``meta_v3_unseen``; with ``fewshot.shots`` the training
split is ``v3_{k}_shot/train`` and ``test`` selects ``v3_{k}_shot/test``).
"""
from __future__ import annotations

from typing import Any, Mapping

from ..errors import ConfigError
from .avsbench import AVSObjectDataset, AVSSemanticDataset, FrameDataset, v3_rows
from .fewshot import fraction_subset, v3_shot_rows
from .synthetic import SynthConfig, SyntheticDataset

KINDS = ("synthetic", "avss", "s4", "ms3", "v3")


def build_dataset(data_cfg: Mapping[str, Any], split: str, seed: int = 0, train: bool = False) -> FrameDataset:
    kind = data_cfg.get("kind", "synthetic")
    if kind not in KINDS:
        raise ConfigError(f"data.kind must be one of {KINDS}, got {kind!r}")
    fewshot = dict(data_cfg.get("fewshot") or {}) if train else {}
    cue_cache = data_cfg.get("cue_cache")
    if kind == "synthetic":
        ds: FrameDataset = SyntheticDataset(SynthConfig.from_dict(data_cfg.get("synthetic")), split)
    else:
        root = data_cfg.get("root")
        if not root:
            raise ConfigError(f"data.root is required for data.kind={kind!r}")
        if kind in ("s4", "ms3"):
            ds = AVSObjectDataset(root, kind, split, cue_cache)
        elif kind == "avss":
            ds = AVSSemanticDataset(root, split=split, cue_cache=cue_cache)
        else:
            shots = (data_cfg.get("fewshot") or {}).get("shots")
            if shots and split in ("train", "test"):
                rows = v3_shot_rows(int(shots), split, data_cfg.get("assets_dir"))
            else:
                rows = v3_rows(split, data_cfg.get("assets_dir"))
            ds = AVSSemanticDataset(root, rows=rows, cue_cache=cue_cache)
    if "fraction" in fewshot:
        ds = fraction_subset(ds, float(fewshot["fraction"]), seed)
    elif "shots" in fewshot and kind != "v3":
        raise ConfigError("data.fewshot.shots selects the AVS-V3 k-shot lists; use data.kind: v3 (or fewshot.fraction)")
    return ds
