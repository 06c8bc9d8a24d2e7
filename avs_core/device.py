"""One rule for choosing the torch device, shared by every model loader."""
from __future__ import annotations

import logging

import torch

from .errors import ConfigError

log = logging.getLogger(__name__)


def resolve_device(device: str | torch.device | None, strict: bool = False) -> torch.device:
    """'auto'/None -> CUDA when available, else CPU. An explicit CUDA device without CUDA
    raises ConfigError when ``strict``, otherwise falls back to CPU with a warning
    (a robot without its GPU should still publish masks)."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"invalid torch device {device!r}: {exc}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda[:N], got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        if strict:
            raise ConfigError(f"device {device!r} requested but CUDA is not available")
        log.warning("device %r requested but CUDA is not available: falling back to CPU", str(device))
        return torch.device("cpu")
    return dev
