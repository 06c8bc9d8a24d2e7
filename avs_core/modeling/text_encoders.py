"""Frozen Hugging Face text encoders: from a local directory, or tiny and random for tests.

``TextCueEncoder`` turns each frame's text cues into TeSO's F_T: every cue is
put in the template "This is a {cue}.", encoded and pooled to one vector; the
cue list is truncated or zero-padded to N_T, with a padding mask.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from ..local_models import from_pretrained

# Words the tiny random tokenizer knows besides the template and the config's extra words.
TINY_VOCAB = (
    "this is a an the . , person man woman child baby dog cat bird car truck train bus motorcycle guitar "
    "piano violin drum drums saxophone flute trumpet keyboard phone clock bell horn helicopter airplane "
    "boat engine siren speaker television radio water fountain rain wind fire cow sheep horse lion tiger "
    "singing talking playing barking music noise"
).split()
SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")


def tiny_tokenizer(extra_words: Sequence[str] = ()):
    """A word-level tokenizer over TINY_VOCAB + ``extra_words`` (lower-cased; unknown words -> [UNK])."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    words = list(dict.fromkeys([*SPECIAL, *TINY_VOCAB, *(w.lower() for w in extra_words)]))
    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]")


def build_text_model(cfg: Mapping[str, Any], key: str):
    """(model, tokenizer): ``cfg.path`` = local HF directory, or ``cfg.tiny`` = BertConfig kwargs (random)."""
    from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

    if cfg.get("tiny") is not None:
        tok = tiny_tokenizer(cfg.get("extra_words", ()))
        bert_cfg = BertConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, **dict(cfg["tiny"]))
        return BertModel(bert_cfg, add_pooling_layer=False), tok
    tok, model = from_pretrained(cfg.get("path"), f"{key}.path", [(AutoTokenizer, {}), (AutoModel, {})])
    # A dual encoder directory (e.g. CLIP) holds the text tower inside.
    return getattr(model, "text_model", model), tok


def pool_tokens(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over the non-padding tokens."""
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)


class TextCueEncoder(nn.Module):
    """Cues (list of B lists of str) -> F_T (B, N_T, d_T) and padding mask (B, N_T) (True = padding)."""

    def __init__(self, model: nn.Module, tokenizer, max_cues: int, template: str = "This is a {}.",
                 max_length: int = 16):
        super().__init__()
        if max_cues < 1:
            raise ConfigError(f"text cue count N_T must be >= 1, got {max_cues}")
        self.model = model
        self.tokenizer = tokenizer
        self.max_cues = int(max_cues)
        self.template = template
        self.max_length = int(max_length)
        self.dim = int(model.config.hidden_size)

    def forward(self, cues: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        device = next(self.model.parameters()).device
        kept = [[c.strip() for c in frame if isinstance(c, str) and c.strip()][: self.max_cues] for frame in cues]
        feats = torch.zeros(len(kept), self.max_cues, self.dim, device=device)
        pad = torch.ones(len(kept), self.max_cues, dtype=torch.bool, device=device)
        sentences = [self.template.format(c) for frame in kept for c in frame]
        if sentences:
            enc = self.tokenizer(sentences, padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt").to(device)
            with torch.no_grad():
                hidden = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            pooled = pool_tokens(hidden, enc["attention_mask"])
            row = 0
            for b, frame in enumerate(kept):
                n = len(frame)
                feats[b, :n] = pooled[row: row + n]
                pad[b, :n] = False
                row += n
        return feats, pad
