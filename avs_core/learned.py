"""A learned paper model (GAVS, AV2T-SAM, TeSO) as a pipeline segmenter."""
from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np

from .errors import AssetError, ConfigError
from .types import SegmenterOutput


class LearnedSegmenter:
    def __init__(self, predictor, tagger=None):
        self.predictor = predictor
        self.tagger = tagger  # optional: labels for the cues topic and the cue refresher

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], device: str) -> "LearnedSegmenter":
        """``model``: a model config name under config/models or a YAML path (its keys, e.g. backbone
        paths on this machine, override the config stored in the checkpoint); ``checkpoint``: weights."""
        from .audio.tagger import AudioTagger
        from .modeling import ModelPredictor, load_checkpoint, load_model_config

        if not cfg.get("checkpoint"):
            raise ConfigError(f"pipeline.checkpoint: a trained .safetensors checkpoint is required for model {cfg['model']!r}")
        model = load_checkpoint(cfg["checkpoint"], device=device, config_overrides=load_model_config(cfg["model"]))
        try:
            tagger = AudioTagger.from_assets(cfg.get("assets_dir"), device=device)
        except AssetError:  # labels are a convenience; a learned model runs without the tagger asset
            tagger = None
        return cls(ModelPredictor(model, device=device), tagger)

    def audio_tags(self, audio: np.ndarray, sample_rate: int, k: int = 5) -> list[tuple[str, float]]:
        return self.tagger.tag(audio, sample_rate).top(k) if self.tagger is not None else []

    def segment(self, rgb: np.ndarray, audio: np.ndarray, sample_rate: int,
                cues: list[str] | None = None) -> SegmenterOutput:
        t = time.perf_counter()
        heatmap = self.predictor.predict(rgb, audio, sample_rate, cues)
        timings = {"model": (time.perf_counter() - t) * 1e3}
        return SegmenterOutput(heatmap.astype(np.float32, copy=False), [], timings, {"cues": cues or []})
