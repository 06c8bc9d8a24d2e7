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
