"""Model registry: ``build_model(cfg)`` from a model config (see config/models/*.yaml)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from ..config import CONFIG_DIR, load_yaml
from ..errors import ConfigError
from .base import AVSModel


def _registry() -> dict[str, type[AVSModel]]:
    from .av2t_sam import AV2TSAM
    from .gavs import GAVS
    from .teso import TeSO, TeSOSAM

    return {"gavs": GAVS, "av2t_sam": AV2TSAM, "teso": TeSO, "teso_sam": TeSOSAM}


MODEL_NAMES = ("gavs", "av2t_sam", "teso", "teso_sam")

# Every key a model config may hold (a misspelt one would otherwise be ignored silently):
# top-level key -> None for a value, or the keys of that section. "tiny" / "feature_extractor"
# hold keyword arguments of the library class they build, checked by that class.
_COMMON = {"name": None, "seed": None, "input_size": None, "audio_sample_rate": None, "audio_window_s": None}
_SAM = {"variant", "checkpoint", "tiny"}
_AUDIO = {"type", "weights", "trainable", "out_dim", "channels", "assets_dir"}
_TEXT = {"path", "tiny", "extra_words"}
_PROMPTER = {"num_cues", "template", "dim", "num_latents", "cross_layers", "heads", "infonce_weight",
             "adapter_bottleneck", "visual_adapter_lr_scale"}
SCHEMAS: dict[str, dict[str, set[str] | None]] = {
    "gavs": {**_COMMON, "sam": _SAM, "audio_encoder": _AUDIO,
             "gavs": {"adapter_blocks", "adapter_bottleneck", "decoder_adapter_bottleneck", "train_mask_decoder",
                      "audio_tokens", "visual_cue_grid", "noise_tokens", "audio_hidden_dim", "audio_dropout",
                      "align_loss_weight", "align_margin"}},
    "av2t_sam": {**_COMMON, "sam": _SAM, "clip": {"path", "tiny"}, "clap": {"path", "tiny", "feature_extractor"},
                 "text_encoder": _TEXT,
                 "av2t": {"fusion", "common_dim", "num_text_tokens", "adapter_hidden_dim", "train_mask_decoder"}},
    "teso": {**_COMMON, "pixel_mean": None, "pixel_std": None, "mask2former": {"path", "tiny"},
             "text_encoder": _TEXT, "audio_encoder": _AUDIO, "teso": _PROMPTER | {"loss_weights"}},
    "teso_sam": {**_COMMON, "sam": _SAM, "text_encoder": _TEXT, "audio_encoder": _AUDIO,
                 "teso": _PROMPTER | {"train_mask_decoder"}},
}


def check_model_config(cfg: Mapping[str, Any]) -> None:
    """ConfigError naming an unknown key of a model config and listing the valid ones at its level."""
    schema = SCHEMAS[cfg["name"]]
    for key, value in cfg.items():
        if key not in schema:
            raise ConfigError(f"unknown key '{key}' in the {cfg['name']} model config; valid keys: {', '.join(schema)}")
        section = schema[key]
        if section is None or value is None:  # a value, or a section left out (e.g. clip: null for an ablation)
            continue
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key '{key}' must be a mapping with keys among: {', '.join(sorted(section))}")
        unknown = sorted(set(value) - section)
        if unknown:
            raise ConfigError(f"unknown key '{key}.{unknown[0]}' in the {cfg['name']} model config; "
                              f"valid keys of '{key}': {', '.join(sorted(section))}")


def build_model(cfg: Mapping[str, Any]) -> AVSModel:
    """Build the model named ``cfg["name"]``.

    Construction runs under ``cfg["seed"]`` (default 0) on a forked RNG, so the
    randomly initialised parts (tiny backbones, new heads, adapters) are the same
    every time a config is built: a checkpoint of the trainable weights then
    reproduces the model exactly.
    """
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"model config must be a mapping, got {type(cfg).__name__}")
    name = cfg.get("name")
    if name not in MODEL_NAMES:
        raise ConfigError(f"config key 'name' must be one of {', '.join(MODEL_NAMES)}; got {name!r}")
    check_model_config(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg.get("seed", 0)))
        model = _registry()[name](cfg)
    return model.eval()


def load_model_config(name_or_path: str | Path) -> dict[str, Any]:
    """A model config by path, or by name under config/models (e.g. "gavs", "tiny/teso")."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        return load_yaml(p)
    return load_yaml(CONFIG_DIR / "models" / f"{name_or_path}.yaml")
