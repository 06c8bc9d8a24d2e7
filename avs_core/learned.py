"""A learned paper model (GAVS, AV2T-SAM, TeSO) as a pipeline segmenter."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .config import CONFIG_DIR, load_yaml
from .errors import AssetError, ConfigError
from .types import SegmenterOutput


class LearnedSegmenter:
    def __init__(self, predictor, tagger=None):
        self.predictor = predictor
        self.tagger = tagger  # optional: labels for the cues topic and the cue refresher

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], device: str) -> "LearnedSegmenter":
        from .modeling import ModelPredictor, build_model, load_checkpoint

        model_cfg_path = Path(str(cfg["model"]))
        if not model_cfg_path.is_file() and (CONFIG_DIR / "models" / f"{model_cfg_path}.yaml").is_file():
            model_cfg_path = CONFIG_DIR / "models" / f"{model_cfg_path}.yaml"
        if not model_cfg_path.is_file():
            raise ConfigError(f"pipeline.model: {cfg['model']!r} is neither 'zero_shot', a model name in "
                              f"{CONFIG_DIR / 'models'} nor a model config file")
        if not cfg.get("checkpoint"):
            raise ConfigError(f"pipeline.checkpoint: a trained checkpoint (.safetensors) is required for model {model_cfg_path}")
        model = build_model(load_yaml(model_cfg_path))
        load_checkpoint(model, cfg["checkpoint"])
        from .audio.tagger import AudioTagger

        try:
            tagger = AudioTagger.from_assets(cfg.get("assets_dir"), device=device)
        except AssetError:  # labels are a convenience; a learned model runs without the tagger asset
            tagger = None
        return cls(ModelPredictor(model.eval(), device=device), tagger)

    def audio_tags(self, audio: np.ndarray, sample_rate: int, k: int = 5) -> list[tuple[str, float]]:
        return self.tagger.tag(audio, sample_rate).top(k) if self.tagger is not None else []

    def segment(self, rgb: np.ndarray, audio: np.ndarray, sample_rate: int,
                cues: list[str] | None = None) -> SegmenterOutput:
        t = time.perf_counter()
        heatmap = self.predictor.predict(rgb, audio, sample_rate, cues)
        timings = {"model": (time.perf_counter() - t) * 1e3}
        return SegmenterOutput(heatmap.astype(np.float32, copy=False), None, [], timings, {"cues": cues or []})
