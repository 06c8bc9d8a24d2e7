"""Segment Anything (Meta's ``segment_anything`` package) building blocks shared by the SAM-based models.

* ``build_sam``: a pretrained SAM of a chosen size from a local checkpoint, or a
  tiny randomly initialised SAM (both from ``avs_core.vision.sam``), from a model
  config section, with errors naming that section's keys.
* ``encode_image``: the ViT image encoder, optionally adding one prompt vector
  per block to the image tokens (AV2T-SAM's encoder adapters).
* ``decode_masks``: SAM's mask decoder for a batch of (image, prompt) pairs.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, Sam

from ..errors import AssetError, ConfigError
from ..local_models import local_path
from ..vision.sam import MODEL_TYPES, build_tiny_sam, load_sam_checkpoint
from .base import zero_padding


def build_sam(cfg: Mapping[str, Any], key: str = "sam") -> Sam:
    """``cfg`` = {variant, checkpoint} for a pretrained SAM, or {tiny: {...}} for a random one
    (``avs_core.vision.sam.build_tiny_sam`` arguments)."""
    if cfg.get("tiny") is not None:
        return build_tiny_sam(**dict(cfg["tiny"]))
    variant = cfg.get("variant", "vit_b")
    if variant not in MODEL_TYPES:
        raise ConfigError(f"config key '{key}.variant' must be one of {MODEL_TYPES}, got {variant!r}")
    path = local_path(cfg.get("checkpoint"), f"{key}.checkpoint")
    try:
        return load_sam_checkpoint(path, variant)
    except AssetError as exc:
        raise AssetError(f"config key '{key}.checkpoint': {exc}") from None


def sam_input_size(sam: Sam) -> int:
    return int(sam.image_encoder.img_size)


def normalize_image(sam: Sam, image01: torch.Tensor, valid_hw=None) -> torch.Tensor:
    """(B,3,S,S) RGB in [0,1] -> SAM's input as ``Sam.preprocess`` makes it: normalised (pixel mean/std
    on the 0-255 scale), then zero outside each image's valid ``valid_hw`` region."""
    return zero_padding((image01 * 255.0 - sam.pixel_mean) / sam.pixel_std, valid_hw)


def encode_image(image_encoder: ImageEncoderViT, x: torch.Tensor,
                 block_prompts: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """SAM ViT forward; ``block_prompts[i]`` (B, C) is added to every token entering block i."""
    x = image_encoder.patch_embed(x)
    if image_encoder.pos_embed is not None:
        x = x + image_encoder.pos_embed
    for i, block in enumerate(image_encoder.blocks):
        if block_prompts is not None:
            x = x + block_prompts[i][:, None, None, :]
        x = block(x)
    return image_encoder.neck(x.permute(0, 3, 1, 2))


def decode_masks(sam: Sam, image_embeddings: torch.Tensor, sparse: torch.Tensor,
                 dense: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Single-mask SAM decoding of B images with B prompt sets -> low-res logits (B,1,h,w), IoU (B,1).

    SAM's decoder repeats the image embedding once per prompt set, so batched
    images must be decoded one at a time to pair image i with prompt set i.
    """
    pe = sam.prompt_encoder.get_dense_pe()
    if dense is None:
        dense = sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
            1, -1, *image_embeddings.shape[-2:])
        dense = dense.expand(image_embeddings.shape[0], -1, -1, -1)
    masks, ious = [], []
    for i in range(image_embeddings.shape[0]):
        m, iou = sam.mask_decoder(
            image_embeddings=image_embeddings[i: i + 1], image_pe=pe,
            sparse_prompt_embeddings=sparse[i: i + 1], dense_prompt_embeddings=dense[i: i + 1],
            multimask_output=False,
        )
        masks.append(m)
        ious.append(iou)
    return torch.cat(masks), torch.cat(ious)


def train_single_mask_decoder(mask_decoder: MaskDecoder) -> None:
    """Unfreeze SAM's mask decoder for single-mask output: all of it except the IoU head and the
    hypernetworks of the unused multimask outputs, which never reach the mask loss."""
    mask_decoder.requires_grad_(True)
    mask_decoder.iou_prediction_head.requires_grad_(False)
    for mlp in mask_decoder.output_hypernetworks_mlps[1:]:
        mlp.requires_grad_(False)


def upscale_logits(low_res: torch.Tensor, size: int) -> torch.Tensor:
    """Low-res mask logits -> (B,1,size,size) at the model's (padded) input size."""
    return F.interpolate(low_res, (size, size), mode="bilinear", align_corners=False)
