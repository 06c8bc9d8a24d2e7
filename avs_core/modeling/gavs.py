"""GAVS (Wang et al., "Prompting Segmentation with Sound Is Generalizable Audio-Visual Source Localizer").

Encoder-prompt-decoder on a frozen SAM:
* Semantic-aware Audio Prompt (SAP, ``SemanticAudioPrompt``): the audio embedding
  is projected to SAM's width and aligned to the visual semantics (triplet loss);
  visual-feature cue tokens and learnable adaptive noise tokens are appended,
  and the token set F_A' is projected to the prompt tokens F_P.
* Correlation Adapters (ColA): bottleneck adapters in the last N ViT blocks and
  in every two-way transformer block of SAM's mask decoder; SAM stays frozen.
* Audio Source Decoder: SAM's two-way transformer (self-attention over F_P,
  cross-modal attention prompt <-> image tokens, with ColA) and its mask head.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .adapters import adapt_block_mlps
from .audio_encoders import build_audio_encoder
from .base import AVSModel
from .losses import triplet_alignment_loss
from .prompt import MLPProjector, TokenProjector
from .sam_utils import (build_sam, decode_masks, encode_image, normalize_image, sam_input_size,
                        train_single_mask_decoder, upscale_logits)


class SemanticAudioPrompt(nn.Module):
    """SAP: audio tokens + visual cue tokens + adaptive noise tokens -> projected prompt F_P."""

    def __init__(self, audio_dim: int, dim: int, n_audio_tokens: int, visual_grid: int, n_noise_tokens: int,
                 hidden_dim: int, dropout: float):
        super().__init__()
        self.audio_proj = TokenProjector(audio_dim, n_audio_tokens, dim, hidden_dim, dropout)
        self.visual_grid = visual_grid
        self.visual_cue_proj = nn.Linear(dim, dim)
        # Aligns pooled image semantics with the audio tokens for the triplet loss.
        self.visual_sem_proj = nn.Linear(dim, dim)
        self.noise_tokens = nn.Parameter(torch.randn(n_noise_tokens, dim) * 0.02)
        self.prompt_proj = MLPProjector(dim, dim, dim)

    def forward(self, audio_emb: torch.Tensor, image_emb: torch.Tensor) -> dict[str, torch.Tensor]:
        b = audio_emb.shape[0]
        audio_tokens = self.audio_proj(audio_emb)  # (B, n_a, C)
        pooled = F.adaptive_avg_pool2d(image_emb, self.visual_grid).flatten(2).transpose(1, 2)  # (B, g*g, C)
        visual_tokens = self.visual_cue_proj(pooled)
        noise = self.noise_tokens.unsqueeze(0).expand(b, -1, -1)
        f_a_prime = torch.cat([audio_tokens, visual_tokens, noise], dim=1)
        return {
            "prompt": self.prompt_proj(f_a_prime),
            "audio_semantic": audio_tokens.mean(1),
            "visual_semantic": self.visual_sem_proj(image_emb.mean(dim=(2, 3))),
        }


class GAVS(AVSModel):
    name = "gavs"

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        g = dict(cfg.get("gavs", {}))
        self.sam = self.frozen(build_sam(cfg.get("sam", {})))
        self.input_size = sam_input_size(self.sam)
        enc = self.sam.image_encoder
        dim = self.sam.prompt_encoder.embed_dim
        vit_dim = enc.patch_embed.proj.out_channels
        n_adapted = int(g.get("adapter_blocks", 6))
        if not 0 <= n_adapted <= len(enc.blocks):
            raise ConfigError(f"config key 'gavs.adapter_blocks' must be in 0..{len(enc.blocks)}, got {n_adapted}")
        bottleneck = int(g.get("adapter_bottleneck", 64))
        adapt_block_mlps(list(enc.blocks)[len(enc.blocks) - n_adapted:], vit_dim, bottleneck)
        adapt_block_mlps(self.sam.mask_decoder.transformer.layers, dim, int(g.get("decoder_adapter_bottleneck", dim // 2)))
        if g.get("train_mask_decoder", False):
            train_single_mask_decoder(self.sam.mask_decoder)
        self.audio_encoder = build_audio_encoder(cfg.get("audio_encoder", {}))
        if not getattr(self.audio_encoder, "trainable", False):
            self.frozen(self.audio_encoder)
        self.sap = SemanticAudioPrompt(
            self.audio_encoder.out_dim, dim, int(g.get("audio_tokens", 1)), int(g.get("visual_cue_grid", 1)),
            int(g.get("noise_tokens", 2)), int(g.get("audio_hidden_dim", 512)), float(g.get("audio_dropout", 0.5)),
        )
        self.align_weight = float(g.get("align_loss_weight", 1.0))
        self.align_margin = float(g.get("align_margin", 0.2))

    def encode_image(self, image: torch.Tensor, valid_hw=None) -> torch.Tensor:
        return encode_image(self.sam.image_encoder, normalize_image(self.sam, image, valid_hw))

    def decode(self, image_emb: torch.Tensor, batch: Mapping[str, Any]) -> dict:
        target = batch.get("target")
        sap = self.sap(self.audio_encoder(batch["audio"]), image_emb)
        low_res, iou = decode_masks(self.sam, image_emb, sap["prompt"])
        losses = {}
        if target is not None:
            # Only sounding samples have an audio-visual pair to align.
            sounding = target.flatten(1).amax(1) > 0
            losses["align"] = self.align_weight * triplet_alignment_loss(
                sap["audio_semantic"][sounding], sap["visual_semantic"][sounding], self.align_margin)
        return {"mask_logits": upscale_logits(low_res, self.input_size), "iou": iou, "losses": losses}
