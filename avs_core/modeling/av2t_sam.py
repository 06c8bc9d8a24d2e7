"""AV2T-SAM (Lee et al., "Audio Visual Segmentation Through Text Embeddings").

* f_CLAP (frozen ``ClapModel`` audio embedding) and f_CLIP (frozen ``CLIPModel``
  image embedding), L2-normalised and projected to a common width, fused as
  f_CLIP * f_CLAP (``fusion: mul``); ``fusion: clap`` / ``clip`` are the
  paper's single-modality ablations.
* The fused feature is mapped to K pseudo text-token embeddings in the input
  embedding space of a frozen text encoder (the text-conditioned prompt
  encoder); its pooled output is projected to a SAM prompt token that drives
  SAM's mask decoder.
* Encoder adapters: a light MLP per ViT block turns the fused feature into a
  prompt added to that block's image tokens (the SAM image encoder is frozen).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio.functional as TAF
from torch import nn

from ..errors import ConfigError
from ..local_models import from_pretrained
from .base import AVSModel
from .prompt import BlockPromptGenerator, MLPProjector, TokenProjector
from .sam_utils import (build_sam, decode_masks, encode_image, normalize_image, sam_input_size,
                        train_single_mask_decoder, upscale_logits)
from .text_encoders import build_text_model, pool_tokens

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
FUSIONS = ("mul", "clap", "clip")


def _embedding(out) -> torch.Tensor:
    """transformers < 5 returns the projected embedding; >= 5 returns it as ``pooler_output``."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def build_clip(cfg: Mapping[str, Any], key: str = "clip"):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    if cfg.get("tiny") is not None:
        return CLIPModel(CLIPConfig(**dict(cfg["tiny"]))), CLIP_MEAN, CLIP_STD
    model, proc = from_pretrained(cfg.get("path"), f"{key}.path", [(CLIPModel, {}), (CLIPImageProcessor, {})])
    return model, tuple(proc.image_mean), tuple(proc.image_std)


def build_clap(cfg: Mapping[str, Any], key: str = "clap"):
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    if cfg.get("tiny") is not None:
        return ClapModel(ClapConfig(**dict(cfg["tiny"]))), ClapFeatureExtractor(**dict(cfg.get("feature_extractor", {})))
    model, features = from_pretrained(cfg.get("path"), f"{key}.path", [(ClapModel, {}), (ClapFeatureExtractor, {})])
    return model, features


class AV2TSAM(AVSModel):
    name = "av2t_sam"

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        a = dict(cfg.get("av2t", {}))
        self.fusion = a.get("fusion", "mul")
        if self.fusion not in FUSIONS:
            raise ConfigError(f"config key 'av2t.fusion' must be one of {FUSIONS}, got {self.fusion!r}")
        self.sam = self.frozen(build_sam(cfg.get("sam", {})))
        self.input_size = sam_input_size(self.sam)
        if a.get("train_mask_decoder", True):
            train_single_mask_decoder(self.sam.mask_decoder)
        common = int(a.get("common_dim", 512))
        self.clip = self.clap = None
        if self.fusion in ("mul", "clip"):
            clip, mean, std = build_clip(cfg.get("clip", {}))
            self.clip = self.frozen(clip)
            self.clip_size = int(clip.config.vision_config.image_size)
            self.register_buffer("clip_mean", torch.tensor(mean).view(1, 3, 1, 1), False)
            self.register_buffer("clip_std", torch.tensor(std).view(1, 3, 1, 1), False)
            self.vision_proj = nn.Linear(int(clip.config.projection_dim), common)
        if self.fusion in ("mul", "clap"):
            clap, self.clap_features = build_clap(cfg.get("clap", {}))
            self.clap = self.frozen(clap)
            self.audio_proj = nn.Linear(int(clap.config.projection_dim), common)
        text_model, _tok = build_text_model(cfg.get("text_encoder", {}), "text_encoder")
        self.text_model = self.frozen(text_model)
        text_dim = int(text_model.config.hidden_size)
        prompt_dim = self.sam.prompt_encoder.embed_dim
        self.to_text_space = TokenProjector(common, int(a.get("num_text_tokens", 3)), text_dim, common)
        self.text_to_prompt = MLPProjector(text_dim, text_dim, prompt_dim)
        enc = self.sam.image_encoder
        self.block_prompts = BlockPromptGenerator(common, int(a.get("adapter_hidden_dim", common)),
                                                  enc.patch_embed.proj.out_channels, len(enc.blocks))

    def encode_image(self, image: torch.Tensor, valid_hw=None) -> dict[str, torch.Tensor]:
        # The SAM encoder is conditioned on audio (block prompts), so only CLIP and the normalised image are cached.
        feats = {"sam_input": normalize_image(self.sam, image, valid_hw)}
        if self.clip is not None:
            x = F.interpolate(image, (self.clip_size, self.clip_size), mode="bicubic", align_corners=False)
            feats["clip"] = _embedding(self.clip.get_image_features(pixel_values=(x - self.clip_mean) / self.clip_std))
        return feats

    def _clap_embedding(self, audio: torch.Tensor) -> torch.Tensor:
        rate = int(self.clap_features.sampling_rate)
        wave = TAF.resample(audio.detach().float().cpu(), self.audio_sample_rate, rate)
        inputs = self.clap_features([np.asarray(w) for w in wave.numpy()], sampling_rate=rate, return_tensors="pt")
        kwargs = {"input_features": inputs["input_features"].to(audio.device)}
        if "is_longer" in inputs and self.clap.config.audio_config.enable_fusion:
            kwargs["is_longer"] = inputs["is_longer"].to(audio.device)
        return _embedding(self.clap.get_audio_features(**kwargs))

    def fused_feature(self, feats: Mapping[str, torch.Tensor], audio: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.clap is not None:
            parts.append(self.audio_proj(F.normalize(self._clap_embedding(audio), dim=-1)))
        if self.clip is not None:
            parts.append(self.vision_proj(F.normalize(feats["clip"], dim=-1)))
        return parts[0] * parts[1] if len(parts) == 2 else parts[0]

    def decode(self, feats: Mapping[str, torch.Tensor], batch: Mapping[str, Any]) -> dict:
        fused = self.fused_feature(feats, batch["audio"])
        pseudo_tokens = self.to_text_space(fused)  # (B, K, d_text): embeddings in the text encoder's input space
        ones = torch.ones(pseudo_tokens.shape[:2], dtype=torch.long, device=fused.device)
        hidden = self.text_model(inputs_embeds=pseudo_tokens, attention_mask=ones).last_hidden_state
        prompt = self.text_to_prompt(pool_tokens(hidden, ones)).unsqueeze(1)  # (B, 1, C)
        image_emb = encode_image(self.sam.image_encoder, feats["sam_input"], self.block_prompts(fused))
        low_res, iou = decode_masks(self.sam, image_emb, prompt)
        return {"mask_logits": upscale_logits(low_res, self.input_size), "iou": iou, "losses": {}}
