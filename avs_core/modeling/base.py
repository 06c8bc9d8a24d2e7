"""AVSModel: the interface every audio-visual segmentation model implements.

forward(batch) with batch keys
  image  (B,3,S,S) RGB in [0,1] at ``input_size`` (the model normalises internally),
  image_hw optional (B,2) or list of (h, w): the valid top-left region of each padded image;
         outside it the model's input is zero *after* normalisation, as SAM pads,
  audio  (B,n) mono waveform at ``audio_sample_rate`` covering ``audio_window_s``,
  cues   list (len B) of list[str] scene text cues (used by text-aware models),
  target optional (B,1,S,S) {0,1} masks,
returns {"mask_logits": (B,1,S,S), "losses": {name: scalar, already weighted}, ...}.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..errors import InputError


def freeze(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def zero_padding(x: torch.Tensor, valid_hw: Sequence[Sequence[int]] | torch.Tensor | None) -> torch.Tensor:
    """Zero ``x`` (B,C,S,S, already normalised) below / right of each image's valid (h, w) region.

    SAM (``Sam.preprocess``) and Mask2Former's image processor normalise first and then pad with
    zeros, which is what their frozen encoders were trained on; padding the [0, 1] image instead
    would feed them -mean/std there.
    """
    if valid_hw is None:
        return x
    for i, (h, w) in enumerate(valid_hw):
        x[i, :, int(h):, :] = 0
        x[i, :, :, int(w):] = 0
    return x


class AVSModel(nn.Module):
    name = "base"
    requires_cues = False
    # True when losses["mask_cls"] already holds the paper's full segmentation loss (TeSO on Mask2Former),
    # so a trainer may skip its own pixel loss on mask_logits.
    seg_loss_in_losses = False

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__()
        self.config = copy.deepcopy(dict(cfg))
        self.input_size = int(cfg.get("input_size", 1024))
        self.audio_sample_rate = int(cfg.get("audio_sample_rate", 16000))
        self.audio_window_s = float(cfg.get("audio_window_s", 1.0))
        # Modules whose weights are frozen stay in eval mode (BatchNorm statistics, dropout) while training.
        self._frozen: list[nn.Module] = []

    def frozen(self, module: nn.Module) -> nn.Module:
        self._frozen.append(freeze(module))
        return module

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self._frozen:
            m.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def lr_scale(self, param_name: str) -> float:
        """Learning-rate ratio of a trainable parameter relative to the base rate."""
        return 1.0

    def param_groups(self, base_lr: float) -> list[dict]:
        """AdamW parameter groups, one per learning-rate ratio."""
        groups: dict[float, list[nn.Parameter]] = {}
        for name, p in self.named_parameters():
            if p.requires_grad:
                groups.setdefault(self.lr_scale(name), []).append(p)
        return [{"params": ps, "lr": base_lr * scale, "lr_scale": scale} for scale, ps in sorted(groups.items())]

    def encode_image(self, image: torch.Tensor, valid_hw=None) -> Any:
        """Per-frame work that does not depend on audio or cues (cached by the predictor).

        ``image`` (B,3,S,S) in [0,1]; ``valid_hw`` as batch["image_hw"] (None: all valid)."""
        raise NotImplementedError

    def decode(self, features: Any, batch: Mapping[str, Any]) -> dict:
        """Audio/cue-dependent work on top of ``encode_image``'s features."""
        raise NotImplementedError

    def forward(self, batch: Mapping[str, Any]) -> dict:
        image, _audio = self.check_batch(batch)
        return self.decode(self.encode_image(image, batch.get("image_hw")), batch)

    def check_batch(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        image, audio = batch.get("image"), batch.get("audio")
        if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 3:
            raise InputError(f"batch['image'] must be a (B,3,H,W) tensor, got {getattr(image, 'shape', image)!r}")
        if image.shape[-2:] != (self.input_size, self.input_size):
            raise InputError(f"batch['image'] must be {self.input_size}x{self.input_size}, got {tuple(image.shape[-2:])}")
        if not isinstance(audio, torch.Tensor) or audio.ndim != 2 or audio.shape[0] != image.shape[0]:
            raise InputError(f"batch['audio'] must be a (B,n) tensor matching the images, got {getattr(audio, 'shape', audio)!r}")
        if self.requires_cues:
            cues = batch.get("cues")
            if not isinstance(cues, (list, tuple)) or len(cues) != image.shape[0]:
                raise InputError(f"{self.name} needs batch['cues']: a list of {image.shape[0]} lists of text cues")
        return image, audio
