"""Model files and directories named by config keys: one lookup, one error type, one ``from_pretrained``.

Models are never downloaded at run time: every path comes from a config key and must
exist locally. Whatever is wrong with it (key unset, path missing, not a saved
transformers model, unloadable) raises :class:`~avs_core.errors.AssetError` naming the key.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from .errors import AssetError, ConfigError

KINDS = ("file", "directory", "transformers")
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def local_path(path, key: str, kind: str = "file") -> Path:
    """``path`` (from config key ``key``) as a local Path of ``kind``: a file, a directory, or a
    transformers directory (one holding the config.json that ``save_pretrained`` writes)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    what = "transformers model directory" if kind == "transformers" else kind
    if not path:
        raise AssetError(f"config key '{key}' is not set: it must name the local {what} to load")
    p = Path(path).expanduser()
    if kind == "transformers" and not (p / "config.json").is_file():
        raise AssetError(f"config key '{key}': no {p / 'config.json'}; expected a transformers model directory saved "
                         "with save_pretrained() (models are never downloaded at run time)")
    if kind == "file" and not p.is_file() or kind == "directory" and not p.is_dir():
        raise AssetError(f"config key '{key}': {what} not found: {p}")
    return p


def from_pretrained(path, key: str, loaders: Sequence[tuple[Any, dict[str, Any]]]) -> list[Any]:
    """``cls.from_pretrained(dir, local_files_only=True, **kwargs)`` for each ``(cls, kwargs)``, in order,
    from the transformers directory of config key ``key``."""
    p = local_path(path, key, "transformers")
    out = []
    for cls, kwargs in loaders:
        try:
            out.append(cls.from_pretrained(p, local_files_only=True, **kwargs))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, ImportError) as exc:
            raise AssetError(f"config key '{key}': cannot load {cls.__name__} from {p}: "
                             f"{type(exc).__name__}: {exc}") from None
    return out


def resolve_dtype(dtype: str | None, device: torch.device) -> torch.dtype:
    """Weights dtype of a transformers model: 'auto' = float16 on GPU (captioners/LLMs are large), float32 on CPU."""
    if dtype in (None, "", "auto"):
        return torch.float16 if device.type == "cuda" else torch.float32
    if dtype not in _DTYPES:
        raise ConfigError(f"dtype must be one of auto, {', '.join(_DTYPES)}; got {dtype!r}")
    return _DTYPES[dtype]
