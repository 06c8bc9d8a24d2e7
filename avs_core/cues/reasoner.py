"""Sounding-object reasoning with a frozen causal LM from a local directory (TeSO §3.2.2).

Chat models get the few-shot CoT prompt as a conversation through the tokenizer's
chat template; base models get the same prompt as plain text. Decoding is greedy
(reproducible cues for training caches) and stops early at the answer line.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Sequence

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from ..errors import InputError
from ..device import resolve_device
from ..local_models import from_pretrained, resolve_dtype
from .prompts import ANSWER_PREFIX, chat_messages, text_prompt

log = logging.getLogger(__name__)


_DONE = re.compile(rf"{re.escape(ANSWER_PREFIX)}[^\n]*\n|\nDescription:", re.IGNORECASE)


class _AnswerFinished(StoppingCriteria):
    """Stops a row once its answer line is complete or it starts a new demonstration.

    (transformers' ``stop_strings`` needs a sub-word tokenizer; this works with any.)
    """

    def __init__(self, tokenizer, prompt_len: int):
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_len:], skip_special_tokens=True)
        return torch.tensor([bool(_DONE.search(t)) for t in texts], device=input_ids.device)


class Reasoner:
    def __init__(self, model, tokenizer, max_cues: int = 5, max_new_tokens: int = 256):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_cues = int(max_cues)
        self.max_new_tokens = int(max_new_tokens)
        self.device = next(model.parameters()).device
        self.use_chat = bool(getattr(tokenizer, "chat_template", None))
        # Batched generation with a decoder-only model needs left padding and a pad token.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    @classmethod
    def from_pretrained(cls, path: str | Path | None, device: str | None = "auto", dtype: str | None = "auto",
                        **kwargs) -> Reasoner:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dev = resolve_device(device, strict=True)
        tokenizer, model = from_pretrained(path, "cues.reasoner.path", [
            (AutoTokenizer, {}), (AutoModelForCausalLM, {"dtype": resolve_dtype(dtype, dev)})])
        log.info("reasoner %s loaded on %s (chat template: %s)", path, dev, bool(tokenizer.chat_template))
        return cls(model.to(dev), tokenizer, **kwargs)

    def prompt(self, caption: str) -> str:
        if not self.use_chat:
            return text_prompt(caption, self.max_cues)
        messages = chat_messages(caption, self.max_cues)
        try:
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        except Exception:  # noqa: BLE001 - some templates reject a system turn (jinja raises its own errors)
            merged = [{"role": "user", "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}]
            return self.tokenizer.apply_chat_template(merged + messages[2:], add_generation_prompt=True, tokenize=False)

    @torch.inference_mode()
    def reason_batch(self, captions: Sequence[str]) -> list[str]:
        """The raw answer text for each caption (parse it with ``parser.parse_answer``)."""
        if not captions:
            return []
        prompts = [self.prompt(c) for c in captions]
        # Chat templates already contain the BOS token.
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=not self.use_chat)
        limit = getattr(self.model.config, "max_position_embeddings", None) or getattr(
            self.model.config, "n_positions", None
        )
        if limit and enc["input_ids"].shape[1] + self.max_new_tokens > limit:
            raise InputError(
                f"reasoner prompt ({enc['input_ids'].shape[1]} tokens) + max_new_tokens ({self.max_new_tokens}) "
                f"exceeds the model context ({limit}); shorten the captions or lower cues.reasoner.max_new_tokens"
            )
        enc = enc.to(self.device)
        out = self.model.generate(
            **enc,
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
            stopping_criteria=StoppingCriteriaList([_AnswerFinished(self.tokenizer, enc["input_ids"].shape[1])]),
        )
        answers = self.tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        # Base models continue with a new demonstration; keep the answer to this caption only.
        return [a.split("\nDescription:")[0].strip() for a in answers]
