"""TeSO (Wang et al., "Can Textual Semantics Mitigate Sounding Object Segmentation Preference?").

* Text cues -> F_T: frozen text encoder, template "This is a {cue}.", padded or
  truncated to N_T (``TextCueEncoder``).
* SeDAM (``SeDAM``): the audio feature F_A is projected to N_L latent audio tokens
  F_AL; N cross-modal layers with the text cues as queries compute
  F_AT = FC(LN(F_T + MultiHead(F_T, F_AL, F_AL))) (Eq. 1-2); the dynamic mask
  M_i = 0 if xi_i > 0 else -inf, xi = head/key-pooled scaled attention scores
  (Eq. 3-4); InfoNCE between the latent tokens (Eq. 10).
* PMQS (``PMQS``): F~_Q = F_Q + Softmax(F_Q F_AT^T / sqrt(d) + M) F_AT (Eq. 5-6),
  injected into the mask queries of the decoder.
* TeSO (Mask2Former, ``TeSO``): frozen Mask2Former with bottleneck adapters on the
  output projections of the Swin window attention, the pixel decoder's deformable
  attention and the transformer decoder's masked attention (Sec. 3.5); binary
  mask by Eq. 7 from class and mask queries; mask-classification loss (Eq. 8-9).
* TeSO-SAM (``TeSOSAM``): the same SeDAM/PMQS on SAM, whose output tokens are the
  mask queries; adapters on the ViT attention projections and on the decoder's
  token-to-image attention projections.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..local_models import from_pretrained
from .adapters import BottleneckAdapter, attach_output_adapter
from .audio_encoders import build_audio_encoder
from .base import AVSModel, zero_padding
from .losses import latent_infonce_loss
from .sam_utils import (build_sam, decode_masks, encode_image, normalize_image, sam_input_size,
                        train_single_mask_decoder, upscale_logits)
from .text_encoders import TextCueEncoder, build_text_model

# Swin window-attention output projection: "o_proj" in transformers >= 5, "output.dense" before.
SWIN_ATTN_OUT = ("attention.o_proj", "attention.output.dense")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def attention_scores(mha: nn.MultiheadAttention, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """Per-head scaled dot-product scores (B, heads, Nq, Nk) of a batch-first nn.MultiheadAttention, pre-softmax."""
    d, h = mha.embed_dim, mha.num_heads
    w_q, w_k, _ = mha.in_proj_weight.split(d)
    b_q, b_k, _ = mha.in_proj_bias.split(d)
    q = F.linear(query, w_q, b_q).unflatten(-1, (h, d // h)).transpose(1, 2)
    k = F.linear(key, w_k, b_k).unflatten(-1, (h, d // h)).transpose(1, 2)
    return q @ k.transpose(-2, -1) / math.sqrt(d // h)


class CrossModalLayer(nn.Module):
    """Eq. 1-2: X <- FC(LN(X + MultiHead(X, F_AL, F_AL)))."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attn(x, latents, latents, need_weights=False)
        return self.fc(self.norm(x + attended))


class SeDAM(nn.Module):
    """Semantics-Driven Audio Modeling: (F_A, F_T) -> sounding object features F_AT and the dynamic mask."""

    def __init__(self, audio_dim: int, text_dim: int, dim: int, n_latent: int, n_layers: int, heads: int):
        super().__init__()
        self.n_latent, self.dim = n_latent, dim
        self.latent_proj = nn.Linear(audio_dim, n_latent * dim)
        self.text_proj = nn.Linear(text_dim, dim) if text_dim != dim else nn.Identity()
        self.layers = nn.ModuleList(CrossModalLayer(dim, heads) for _ in range(n_layers))

    def forward(self, audio_emb: torch.Tensor, text: torch.Tensor, text_pad: torch.Tensor) -> dict[str, torch.Tensor]:
        latents = self.latent_proj(audio_emb).view(-1, self.n_latent, self.dim)  # F_AL
        f_t = self.text_proj(text)
        # Zero padding (Sec. 3.3) stays zero after the projection.
        f_t = f_t.masked_fill(text_pad.unsqueeze(-1), 0.0)
        # Eq. 3: pool the first layer's scores (queries = the text cues) over heads and keys.
        xi = attention_scores(self.layers[0].attn, f_t, latents).mean(dim=(1, 3))  # (B, N_T)
        # Eq. 4 (True = -inf in PMQS); padded cue slots are never attended either.
        mask = (xi <= 0) | text_pad
        x = f_t
        for layer in self.layers:
            x = layer(x, latents)
        return {"f_at": x, "mask": mask, "xi": xi, "latents": latents}


class PMQS(nn.Module):
    """Prompting Mask Queries with Semantics (Eq. 5-6), single-head with learned projections."""

    def __init__(self, query_dim: int, feat_dim: int):
        super().__init__()
        self.q = nn.Linear(query_dim, feat_dim)
        self.k = nn.Linear(feat_dim, feat_dim)
        self.v = nn.Linear(feat_dim, feat_dim)
        self.out = nn.Linear(feat_dim, query_dim)
        self.scale = 1.0 / math.sqrt(feat_dim)

    def forward(self, queries: torch.Tensor, f_at: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """queries (B,Q,Dq), f_at (B,N_T,D), mask (B,N_T) True = -inf. Returns F~_Q."""
        scores = (self.q(queries) @ self.k(f_at).transpose(1, 2)) * self.scale  # (B, Q, N_T)
        # A frame whose every cue is masked gets no injection (Eq. 5 is undefined there).
        none_left = mask.all(dim=1)
        eff = mask & ~none_left.unsqueeze(1)
        weights = scores.masked_fill(eff.unsqueeze(1), float("-inf")).softmax(-1)
        keep = (~none_left).to(queries.dtype)[:, None, None]
        return queries + keep * self.out(weights @ self.v(f_at))


class TextAudioPrompter(nn.Module):
    """Audio encoder + text cue encoder + SeDAM + PMQS, shared by both TeSO variants."""

    def __init__(self, owner: AVSModel, cfg: Mapping[str, Any], query_dim: int):
        super().__init__()
        t = dict(cfg.get("teso", {}))
        self.audio_encoder = build_audio_encoder(cfg.get("audio_encoder", {}))
        if not getattr(self.audio_encoder, "trainable", False):
            owner.frozen(self.audio_encoder)
        model, tokenizer = build_text_model(cfg.get("text_encoder", {}), "text_encoder")
        self.text_encoder = TextCueEncoder(model, tokenizer, int(t.get("num_cues", 8)),
                                           t.get("template", "This is a {}."))
        owner.frozen(self.text_encoder)
        dim = int(t.get("dim", query_dim))
        self.sedam = SeDAM(self.audio_encoder.out_dim, self.text_encoder.dim, dim, int(t.get("num_latents", 8)),
                           int(t.get("cross_layers", 4)), int(t.get("heads", 8)))
        self.pmqs = PMQS(query_dim, dim)
        self.infonce_weight = float(t.get("infonce_weight", 1.0))

    def forward(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        text, pad = self.text_encoder(batch["cues"])
        out = self.sedam(self.audio_encoder(batch["audio"]), text, pad)
        out["infonce"] = self.infonce_weight * latent_infonce_loss(out["latents"])
        return out


def sounding_logits(class_logits: torch.Tensor, mask_logits: torch.Tensor) -> torch.Tensor:
    """Binary sounding-object logits (B,1,h,w) from Mask2Former's class (B,Q,2) and mask (B,Q,h,w) queries.

    Eq. 7 sums p_q(sounding) * sigmoid(m_q) over the queries, which exceeds 1 where
    queries overlap (always, at initialisation). We combine the same per-query
    terms as 1 - prod_q (1 - p_q sigmoid(m_q)): identical to Eq. 7 where one query
    claims a pixel, always a probability, and differentiable everywhere.
    """
    p = class_logits.softmax(-1)[..., 0, None, None] * mask_logits.sigmoid()  # (B,Q,h,w)
    log_none = torch.log1p(-p.clamp(max=1 - 1e-6)).sum(1, keepdim=True).clamp(max=-1e-7)  # log(1 - M)
    return torch.log(-torch.expm1(log_none)) - log_none


def build_mask2former(cfg: Mapping[str, Any], loss_weights: Mapping[str, float], key: str = "mask2former"):
    """Mask2Former with a single "sounding object" class: from a local directory or a tiny config.

    ``loss_weights`` {bce, dice, cls} become Mask2Former's mask/dice/class loss weights (Eq. 8-9).
    """
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation

    weights = {"mask_weight": float(loss_weights.get("bce", 5.0)), "dice_weight": float(loss_weights.get("dice", 5.0)),
               "class_weight": float(loss_weights.get("cls", 2.0))}
    if cfg.get("tiny") is not None:
        kwargs = dict(cfg["tiny"])
        return Mask2FormerForUniversalSegmentation(
            Mask2FormerConfig(num_labels=1, use_pretrained_backbone=False, **weights, **kwargs))
    # The pretrained class head (e.g. 150 ADE20K classes) is replaced by a fresh 1-class head.
    (model,) = from_pretrained(cfg.get("path"), f"{key}.path", [
        (Mask2FormerForUniversalSegmentation, dict(num_labels=1, ignore_mismatched_sizes=True, **weights))])
    return model


class TeSO(AVSModel):
    """TeSO on Mask2Former."""

    name = "teso"
    requires_cues = True
    seg_loss_in_losses = True

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        t = dict(cfg.get("teso", {}))
        self.m2f = self.frozen(build_mask2former(cfg.get("mask2former", {}), t.get("loss_weights", {})))
        self.m2f.class_predictor.requires_grad_(True)  # new 1-class head
        hidden = int(self.m2f.config.hidden_dim)
        bottleneck = int(t.get("adapter_bottleneck", 64))
        self.adapters = nn.ModuleDict()
        self._hooks = []
        for name, module in self.m2f.named_modules():
            if "pixel_level_module.encoder" in name and name.endswith(SWIN_ATTN_OUT):  # Swin W-MSA output projection
                kind, dim = "swin", module.out_features
            elif name.endswith("self_attn.output_proj") and "pixel_level_module.decoder" in name:
                kind, dim = "pixel", module.out_features  # deformable attention output projection
            elif name.endswith("cross_attn") and "transformer_module.decoder" in name:
                kind, dim = "masked", module.embed_dim  # masked attention (its out_proj is its output)
            else:
                continue
            adapter = BottleneckAdapter(dim, min(bottleneck, dim))
            self.adapters[f"{kind}__{name.replace('.', '_')}"] = adapter
            self._hooks.append(attach_output_adapter(module, adapter))
        if not any(k.startswith("swin__") for k in self.adapters):
            raise ConfigError("teso: the Mask2Former backbone has no Swin attention to adapt (expected a Swin backbone)")
        self.prompter = TextAudioPrompter(self, cfg, hidden)
        self.input_size = int(cfg.get("input_size", 384))
        self.register_buffer("pixel_mean", torch.tensor(cfg.get("pixel_mean", IMAGENET_MEAN)).view(1, 3, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(cfg.get("pixel_std", IMAGENET_STD)).view(1, 3, 1, 1), False)
        self._prompt: dict | None = None
        self._hooks.append(self.m2f.model.transformer_module.decoder.register_forward_pre_hook(
            self._inject_queries, with_kwargs=True))
        self.visual_adapter_lr_scale = float(t.get("visual_adapter_lr_scale", 0.1))

    def lr_scale(self, param_name: str) -> float:
        # Paper: 1e-4 for the visual encoder adapters, 1e-3 for everything else.
        return self.visual_adapter_lr_scale if param_name.startswith("adapters.swin__") else 1.0

    def _inject_queries(self, _module, args, kwargs):
        """PMQS on the mask query features F_Q (``inputs_embeds``, (Q, B, C)) entering the decoder."""
        if self._prompt is None:
            raise RuntimeError("TeSO decoder called outside TeSO.decode")
        q = kwargs["inputs_embeds"].transpose(0, 1)
        kwargs["inputs_embeds"] = self.prompter.pmqs(q, self._prompt["f_at"], self._prompt["mask"]).transpose(0, 1)
        return args, kwargs

    def encode_image(self, image: torch.Tensor, valid_hw=None) -> torch.Tensor:
        # The Mask2Former backbone runs inside the decode pass (adapters everywhere); keep the normalised image.
        return zero_padding((image - self.pixel_mean) / self.pixel_std, valid_hw)

    def decode(self, pixels: torch.Tensor, batch: Mapping[str, Any]) -> dict:
        prompt = self.prompter(batch)
        target = batch.get("target")
        labels = {}
        if target is not None:
            sounding = target.flatten(1).amax(1) > 0
            labels = {
                "mask_labels": [t.float() if s else t[:0].float() for t, s in zip(target, sounding)],
                "class_labels": [torch.zeros(int(s), dtype=torch.long, device=t.device) for t, s in zip(target, sounding)],
            }
        self._prompt = prompt
        try:
            out = self.m2f(pixel_values=pixels, **labels)
        finally:
            self._prompt = None
        logits = F.interpolate(sounding_logits(out.class_queries_logits, out.masks_queries_logits),
                               (self.input_size, self.input_size), mode="bilinear", align_corners=False)
        losses = {"infonce": prompt["infonce"]}
        if target is not None:
            losses["mask_cls"] = out.loss  # Eq. 8-9 with the config's lambda_bce/dice/cls, Hungarian matched
        return {"mask_logits": logits, "losses": losses,
                "cue_mask": prompt["mask"], "latents": prompt["latents"]}


class TeSOSAM(AVSModel):
    """TeSO on SAM (the paper's TeSO-SAM variant): SAM's output tokens are the mask queries."""

    name = "teso_sam"
    requires_cues = True

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        t = dict(cfg.get("teso", {}))
        self.sam = self.frozen(build_sam(cfg.get("sam", {})))
        self.input_size = sam_input_size(self.sam)
        vit_dim = self.sam.image_encoder.patch_embed.proj.out_channels
        dim = self.sam.prompt_encoder.embed_dim
        bottleneck = int(t.get("adapter_bottleneck", 64))
        self.adapters = nn.ModuleDict()
        self._hooks = []
        targets = [(f"vit{i}", b.attn.proj, vit_dim) for i, b in enumerate(self.sam.image_encoder.blocks)]
        targets += [(f"dec{i}", layer.cross_attn_token_to_image.out_proj, dim)
                    for i, layer in enumerate(self.sam.mask_decoder.transformer.layers)]
        for name, module, width in targets:
            adapter = BottleneckAdapter(width, min(bottleneck, width))
            self.adapters[name] = adapter
            self._hooks.append(attach_output_adapter(module, adapter))
        if t.get("train_mask_decoder", False):
            train_single_mask_decoder(self.sam.mask_decoder)
        self.prompter = TextAudioPrompter(self, cfg, dim)
        self.n_queries = 1 + self.sam.mask_decoder.num_mask_tokens
        self._prompt: tuple[torch.Tensor, torch.Tensor] | None = None
        self._hooks.append(self.sam.mask_decoder.transformer.register_forward_pre_hook(self._inject_queries))
        self.visual_adapter_lr_scale = float(t.get("visual_adapter_lr_scale", 0.1))

    def lr_scale(self, param_name: str) -> float:
        return self.visual_adapter_lr_scale if param_name.startswith("adapters.vit") else 1.0

    def _inject_queries(self, _module, args):
        """PMQS on SAM's output tokens (IoU + mask tokens) at the start of the two-way transformer."""
        image_embedding, image_pe, tokens = args
        f_at, mask = self._prompt
        queries = self.prompter.pmqs(tokens[:, : self.n_queries], f_at, mask)
        return image_embedding, image_pe, torch.cat([queries, tokens[:, self.n_queries:]], dim=1)

    def encode_image(self, image: torch.Tensor, valid_hw=None) -> torch.Tensor:
        return encode_image(self.sam.image_encoder, normalize_image(self.sam, image, valid_hw))

    def decode(self, image_emb: torch.Tensor, batch: Mapping[str, Any]) -> dict:
        prompt = self.prompter(batch)
        no_prompts = image_emb.new_zeros(1, 0, self.sam.prompt_encoder.embed_dim)
        masks = []
        try:
            for i in range(image_emb.shape[0]):  # SAM decodes one image at a time (see decode_masks)
                self._prompt = (prompt["f_at"][i: i + 1], prompt["mask"][i: i + 1])
                masks.append(decode_masks(self.sam, image_emb[i: i + 1], no_prompts)[0])
        finally:
            self._prompt = None
        return {"mask_logits": upscale_logits(torch.cat(masks), self.input_size),
                "losses": {"infonce": prompt["infonce"]}, "cue_mask": prompt["mask"], "latents": prompt["latents"]}
