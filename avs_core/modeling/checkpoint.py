"""Checkpoints as safetensors: the trainable weights (and the buffers of trainable modules),
the model config as JSON and a format version in the metadata. Frozen backbones are not
stored; they are rebuilt from the config's paths (or its seed, for tiny random ones)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..config import merge
from ..errors import AssetError
from .base import AVSModel
from .build import build_model

FORMAT_VERSION = "1"


def _trainable_buffers(model: AVSModel) -> dict[str, torch.Tensor]:
    frozen = {id(m) for f in model._frozen for m in f.modules()}
    out = {}
    for mod_name, module in model.named_modules():
        if id(module) in frozen:
            continue
        for buf_name, buf in module.named_buffers(recurse=False):
            if buf_name in module._non_persistent_buffers_set:
                continue
            out[f"{mod_name}.{buf_name}" if mod_name else buf_name] = buf
    return out


def checkpoint_state(model: AVSModel) -> dict[str, torch.Tensor]:
    state = {n: p for n, p in model.named_parameters() if p.requires_grad}
    state.update(_trainable_buffers(model))
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def save_checkpoint(model: AVSModel, path: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``path`` (.safetensors). ``extra``: JSON-serialisable training info stored in the metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format_version": FORMAT_VERSION, "model": model.name, "config": json.dumps(model.config)}
    if extra:
        meta["extra"] = json.dumps(dict(extra))
    save_file(checkpoint_state(model), str(path), metadata=meta)
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise AssetError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception as exc:  # not a safetensors file
        raise AssetError(f"checkpoint {path} is not a readable safetensors file: {exc}") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise AssetError(f"checkpoint {path} has format version {meta.get('format_version')!r}; "
                         f"this avs_core reads version {FORMAT_VERSION}")
    out = {"format_version": meta["format_version"], "model": meta.get("model"),
           "config": json.loads(meta["config"])}
    if "extra" in meta:
        out["extra"] = json.loads(meta["extra"])
    return out


def load_checkpoint(path: str | Path, model: AVSModel | None = None, device: str | torch.device = "cpu",
                    config_overrides: Mapping[str, Any] | None = None) -> AVSModel:
    """Model with the checkpoint's weights. Built from the stored config (``config_overrides`` merged in,
    e.g. backbone paths on another machine) unless ``model`` is given."""
    meta = read_metadata(path)
    if model is None:
        cfg = merge(meta["config"], config_overrides or {})
        model = build_model(cfg)
    elif model.name != meta["model"]:
        raise AssetError(f"checkpoint {path} holds a {meta['model']!r} model, not {model.name!r}")
    state = load_file(str(path))
    expected = set(checkpoint_state(model))
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise AssetError(f"checkpoint {path} does not match the {model.name} model built from its config: "
                         f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                         f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    model.load_state_dict(state, strict=False)
    return model.to(device).eval()
