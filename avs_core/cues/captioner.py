"""Dense scene captions from a transformers image-to-text model in a local directory.

Works with models under ``AutoModelForImageTextToText`` (BLIP, BLIP-2, LLaVA, Florence-2,
vision-encoder-decoder, ...). Instruction-following models (their processor has a chat
template) get the paper's dense-caption instruction; plain captioners (BLIP) caption
unconditionally, because a long instruction would be treated as a caption prefix.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError, InputError
from ..device import resolve_device
from ..local_models import from_pretrained, resolve_dtype
from .prompts import CAPTION_PROMPT

log = logging.getLogger(__name__)

PROMPT_STYLES = ("auto", "chat", "text", "none")


def to_pil(frame: np.ndarray) -> Image.Image:
    arr = np.asarray(frame)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InputError(f"captioner needs an HxWx3 RGB frame, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.floating):
            raise InputError(f"captioner needs uint8 or float [0,1] frames, got dtype {arr.dtype}")
        arr = (np.clip(np.nan_to_num(arr), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(arr), "RGB")


def _strip_prefix(text: str, prefix: str) -> str:
    if prefix and text.lower().startswith(prefix.lower()):
        return text[len(prefix):].strip()
    return text


class Captioner:
    def __init__(self, model, processor, prompt: str = CAPTION_PROMPT, prompt_style: str = "auto",
                 max_new_tokens: int = 160):
        if prompt_style not in PROMPT_STYLES:
            raise ConfigError(f"captioner prompt_style must be one of {PROMPT_STYLES}, got {prompt_style!r}")
        self.model = model.eval()
        self.processor = processor
        self.prompt = prompt
        self.max_new_tokens = int(max_new_tokens)
        # Some processors keep the template on their tokenizer.
        self.chat_template = getattr(processor, "chat_template", None) or getattr(
            getattr(processor, "tokenizer", None), "chat_template", None
        )
        if prompt_style == "auto":
            prompt_style = "chat" if self.chat_template else "none"
        if prompt_style == "chat" and not self.chat_template:
            raise ConfigError("captioner prompt_style 'chat' needs a processor or tokenizer with a chat template")
        self.prompt_style = prompt_style
        self.device = next(model.parameters()).device

    @classmethod
    def from_pretrained(cls, path: str | Path | None, device: str | None = "auto", dtype: str | None = "auto",
                        **kwargs) -> Captioner:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        dev = resolve_device(device, strict=True)
        processor, model = from_pretrained(path, "cues.captioner.path", [
            (AutoProcessor, {}), (AutoModelForImageTextToText, {"dtype": resolve_dtype(dtype, dev)})])
        captioner = cls(model.to(dev), processor, **kwargs)
        log.info("captioner %s loaded on %s (prompt style %s)", path, dev, captioner.prompt_style)
        return captioner

    def _inputs(self, images: list[Image.Image]):
        n = len(images)
        if self.prompt_style == "chat":
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": self.prompt}]}]
            text = self.processor.apply_chat_template(
                messages, chat_template=self.chat_template, add_generation_prompt=True, tokenize=False
            )
            return self.processor(images=images, text=[text] * n, return_tensors="pt", padding=True)
        if self.prompt_style == "text":
            return self.processor(images=images, text=[self.prompt] * n, return_tensors="pt", padding=True)
        return self.processor(images=images, return_tensors="pt")

    @torch.inference_mode()
    def caption_batch(self, frames: Sequence[np.ndarray]) -> list[str]:
        """One caption per HxWx3 RGB frame."""
        if not frames:
            return []
        inputs = self._inputs([to_pil(f) for f in frames]).to(self.device)
        dtype = next(self.model.parameters()).dtype
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
        out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        texts = [" ".join(t.split()) for t in self.processor.batch_decode(out, skip_special_tokens=True)]
        if "input_ids" in inputs:
            # Generation echoes the prompt (decoder-only models, BLIP's text prefix): drop it.
            prompts = self.processor.batch_decode(inputs["input_ids"], skip_special_tokens=True)
            texts = [_strip_prefix(t, " ".join(p.split())) for t, p in zip(texts, prompts)]
        return texts

    def caption(self, frame: np.ndarray) -> str:
        return self.caption_batch([frame])[0]
