"""Loading transformers models for the cue backends: local directories only, clear errors."""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import AssetError, ConfigError

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def model_dir(path: str | Path | None, key: str) -> Path:
    """A local model directory with a config.json, or an AssetError naming the config key."""
    if not path:
        raise ConfigError(f"config key '{key}' is not set: it must name a local transformers model directory")
    p = Path(path).expanduser()
    if not (p / "config.json").is_file():
        raise AssetError(
            f"{key}={p}: no config.json there; expected a transformers model saved with save_pretrained() "
            "(models are never downloaded at run time)"
        )
    return p


def resolve_dtype(dtype: str | None, device: torch.device) -> torch.dtype:
    """'auto': float16 on GPU (captioners/LLMs are large), float32 on CPU."""
    if dtype in (None, "", "auto"):
        return torch.float16 if device.type == "cuda" else torch.float32
    if dtype not in _DTYPES:
        raise ConfigError(f"dtype must be one of auto, {', '.join(_DTYPES)}; got {dtype!r}")
    return _DTYPES[dtype]


def load_failed(key: str, path: Path, exc: Exception) -> AssetError:
    return AssetError(f"{key}={path}: cannot load model: {type(exc).__name__}: {exc}")
