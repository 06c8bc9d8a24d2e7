"""Loading user-supplied backbone weight files safely, with errors naming the config key."""
from __future__ import annotations

import torch
from safetensors.torch import load_file

from ..errors import AssetError
from ..local_models import local_path


def load_weights_file(path, key: str) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors or a torch pickle (loaded with ``weights_only=True``)."""
    p = local_path(path, key)
    try:
        if p.suffix == ".safetensors":
            return load_file(str(p))
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupted or foreign files: report them against the config key
        raise AssetError(f"config key '{key}': cannot read weights {p}: {exc}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise AssetError(f"config key '{key}': {p} does not hold a state dict")
    return state
