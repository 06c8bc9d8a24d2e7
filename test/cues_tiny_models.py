"""Tiny randomly initialised captioner / causal LM saved to a directory, for cue tests (no downloads)."""
from __future__ import annotations

import re
from pathlib import Path

from avs_core.cues import prompts
from avs_core.cues.vocabulary import AVSBENCH, COCO_SOUNDING

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _word_tokenizer(chat_template: str | None, cls_prefix: bool = False):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    text = " ".join([prompts.SYSTEM, prompts.CAPTION_PROMPT, *(d + " " + r for d, r in prompts.EXAMPLES)])
    words = sorted(set(re.findall(r"\w+|[^\w\s]", text.lower())) | {w for n in (*AVSBENCH, *COCO_SOUNDING) for w in re.findall(r"\w+", n)})
    vocab = {tok: i for i, tok in enumerate(SPECIALS + words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if cls_prefix:  # BERT-style, as BLIP expects: generate() replaces [CLS] with BOS and drops [SEP]
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
            special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
        )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="<s>", eos_token="</s>",
        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
        additional_special_tokens=["<|system|>", "<|user|>", "<|assistant|>"],
    )
    if chat_template:
        fast.chat_template = chat_template
    return fast


def save_tiny_llm(path: Path, chat: bool = True) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _word_tokenizer(CHAT_TEMPLATE if chat else None)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def save_tiny_blip(path: Path, chat: bool = False) -> Path:
    import torch
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    tokenizer = _word_tokenizer(None, cls_prefix=True)
    torch.manual_seed(0)
    config = BlipConfig(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
            num_attention_heads=2, max_position_embeddings=128, encoder_hidden_size=32,
            bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
            sep_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=32,
    )
    BlipForConditionalGeneration(config).save_pretrained(path)
    processor = BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer)
    if chat:  # makes the captioner take the instruction path, as with LLaVA-style processors
        processor.chat_template = (
            "{% for m in messages %}{% for c in m['content'] %}{% if c['type'] == 'text' %}"
            "{{ c['text'] }}{% endif %}{% endfor %}{% endfor %}"
        )
    processor.save_pretrained(path)
    return path
