"""Segment Anything box-prompted masks (the ``segment_anything`` package).

No SAM weights ship with this project: a user checkpoint is loaded from the
``vision.sam_checkpoint`` path. ``build_tiny_sam`` assembles a small, randomly
initialised SAM from the library's own modeling classes for tests and for
models that train SAM-shaped parts from scratch.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from segment_anything import SamPredictor, sam_model_registry
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

from ..errors import AssetError, ConfigError, InputError
from ..image import to_rgb8

CHECKPOINT_KEY = "vision.sam_checkpoint"
# "default" is an alias of vit_h in segment_anything; listing the real names keeps configs explicit.
MODEL_TYPES = ("vit_b", "vit_l", "vit_h")
_BOXES_PER_PASS = 4


def build_tiny_sam(img_size: int = 256, embed_dim: int = 64, depth: int = 2, prompt_dim: int = 64) -> Sam:
    """A small SAM with random weights: ViT image encoder (patch 16), prompt encoder, two-way mask decoder.

    img_size must be a multiple of 16; embed_dim a multiple of 4 (4 heads); prompt_dim a
    multiple of 16 (the decoder upsamples to prompt_dim // 8 channels and its attention
    downsamples by 2 over 8 heads).
    """
    if img_size % 16 or embed_dim % 4 or prompt_dim % 16 or depth < 1:
        raise ValueError(
            f"build_tiny_sam: need img_size % 16 == 0, embed_dim % 4 == 0, prompt_dim % 16 == 0, depth >= 1; "
            f"got img_size={img_size}, embed_dim={embed_dim}, depth={depth}, prompt_dim={prompt_dim}"
        )
    grid = img_size // 16
    encoder = ImageEncoderViT(
        img_size=img_size,
        patch_size=16,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=4,
        mlp_ratio=4.0,
        out_chans=prompt_dim,
        qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        use_rel_pos=True,
        window_size=0,  # the token grid is small: global attention in every block
    )
    prompt_encoder = PromptEncoder(
        embed_dim=prompt_dim,
        image_embedding_size=(grid, grid),
        input_image_size=(img_size, img_size),
        mask_in_chans=16,
    )
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=prompt_dim, mlp_dim=4 * prompt_dim, num_heads=8),
        transformer_dim=prompt_dim,
        iou_head_depth=3,
        iou_head_hidden_dim=prompt_dim,
    )
    return Sam(image_encoder=encoder, prompt_encoder=prompt_encoder, mask_decoder=decoder).eval()


def load_sam_checkpoint(path: str | Path, model_type: str = "vit_b") -> Sam:
    """A SAM of ``model_type`` with weights from a local .pth/.pt (torch) or .safetensors file."""
    path = Path(path).expanduser()
    if model_type not in MODEL_TYPES:
        raise ConfigError(f"vision.sam_model_type must be one of {list(MODEL_TYPES)}, got {model_type!r}")
    if not path.is_file():
        raise AssetError(
            f"SAM checkpoint not found: {path} (config key {CHECKPOINT_KEY}); "
            f"download the official sam_{model_type} checkpoint elsewhere and point {CHECKPOINT_KEY} at it"
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch/safetensors raise many types for corrupt files
        raise AssetError(f"cannot read SAM checkpoint {path}: {_first_line(exc)}") from None
    sam = sam_model_registry[model_type](checkpoint=None)
    try:
        sam.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise AssetError(f"{path} is not a SAM {model_type} checkpoint ({CHECKPOINT_KEY}): {_first_line(exc)}") from None
    return sam.eval()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class SamBoxSegmenter:
    """Box prompts -> binary masks at the frame's resolution; the image is encoded once per call."""

    def __init__(self, sam: Sam, device: str = "cpu"):
        try:
            self.predictor = SamPredictor(sam.to(device).eval())
        except (RuntimeError, AssertionError) as exc:
            raise ConfigError(f"cannot place SAM on device {device!r} (vision.device): {exc}") from None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "SamBoxSegmenter":
        """Keys (the ``vision`` config section): sam_checkpoint, sam_model_type, device."""
        checkpoint = cfg.get("sam_checkpoint")
        if not checkpoint:
            raise AssetError(f"no SAM checkpoint configured: set {CHECKPOINT_KEY} to a local sam_vit_*.pth file")
        sam = load_sam_checkpoint(checkpoint, cfg.get("sam_model_type") or "vit_b")
        return cls(sam, cfg.get("device") or "cpu")

    @torch.no_grad()
    def segment_boxes(self, rgb: np.ndarray, boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, H, W) bool masks and (N,) predicted mask IoU for N boxes (x1, y1, x2, y2 in frame pixels)."""
        rgb = to_rgb8(rgb)
        h, w = rgb.shape[:2]
        try:
            boxes = np.asarray(boxes_xyxy, dtype=np.float32)
        except (TypeError, ValueError):
            raise InputError("SAM box prompts must be numeric (N, 4) x1, y1, x2, y2") from None
        if boxes.size == 0:
            return np.zeros((0, h, w), bool), np.zeros(0, np.float32)
        boxes = boxes[None] if boxes.shape == (4,) else boxes
        if boxes.ndim != 2 or boxes.shape[1] != 4 or not np.all(np.isfinite(boxes)):
            raise InputError(f"SAM box prompts must be finite (N, 4) x1, y1, x2, y2, got shape {boxes.shape}")
        self.predictor.set_image(rgb)
        device = self.predictor.device
        prompts = self.predictor.transform.apply_boxes_torch(torch.as_tensor(boxes, device=device), (h, w))
        masks, quality = [], []
        # Masks are upsampled to the frame as float before thresholding: a few boxes at a time
        # bounds that memory on 4K/8K frames.
        for chunk in prompts.split(_BOXES_PER_PASS):
            # One mask per box: SAM's authors recommend single-mask output for unambiguous box prompts.
            m, iou, _ = self.predictor.predict_torch(None, None, boxes=chunk, multimask_output=False)
            masks.append(m[:, 0].cpu().numpy())
            quality.append(iou[:, 0].float().cpu().numpy())
        self.predictor.reset_image()
        return np.concatenate(masks), np.concatenate(quality)
