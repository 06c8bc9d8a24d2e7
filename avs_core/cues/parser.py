"""Turn an LLM's free-text answer into a clean cue list.

The prompt asks for a last line ``Sounding objects: a, b`` (or ``none``). Models
do not always comply, so parsing tries, in order: that strict line, JSON, a
numbered/bulleted list, and finally the vocabulary nouns in the prose (the
"fallback" that rambling models end up in). Refusals and empty answers give
no cues. Items are cleaned, lemmatised, mapped to vocabulary names when they
contain one, deduplicated and capped at N_T.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .nouns import extract_nouns
from .vocabulary import Vocabulary, canonical, default_vocabulary

_STRICT = re.compile(
    r"^[\s*#>\-]*(?:final\s+answer|answer|(?:potential\s+)?sounding\s+objects?|text\s+cues)\s*\**\s*[:=\-]\s*(.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_NONE = re.compile(
    r"^\W*(?:none|nothing|n/?a|no\s+(?:potential\s+)?(?:sounding\s+)?objects?(?:\s+\w+)*|there\s+(?:are|is)\s+no\b.*)\W*$",
    re.IGNORECASE,
)
_REFUSAL = re.compile(
    r"\b(?:i\s*(?:'m|am)\s+sorry|i\s+(?:cannot|can't|can\s*not|am\s+unable|'m\s+unable)|as\s+an\s+ai\b|i\s+apologi[sz]e)",
    re.IGNORECASE,
)
_LIST_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+(.+?)\s*$", re.MULTILINE)
_JSON_KEYS = ("sounding_objects", "sounding objects", "objects", "answer", "cues", "text_cues")
_SPLIT = re.compile(r",|;|/|\band\b|\n", re.IGNORECASE)
_ARTICLE = re.compile(r"^(?:a|an|the|some|two|three|several)\s+", re.IGNORECASE)
# Longer items are sentences, not names: only their vocabulary nouns are kept.
_MAX_ITEM_WORDS = 3


@dataclass(frozen=True)
class ParsedAnswer:
    texts: list[str]
    # How they were obtained: strict | json | list | prose (format missed) | none | refusal | empty.
    method: str

    @property
    def followed_format(self) -> bool:
        return self.method in ("strict", "none", "json")


def _clean_item(item: str, vocab: Vocabulary) -> list[str]:
    """One answer item -> its cues: the vocabulary nouns it names, else the item itself if name-like."""
    item = re.sub(r"\([^)]*\)", " ", item)  # "(dog barking)" qualifiers
    item = re.sub(r"[\"'`*_\[\]{}<>]", " ", item)
    item = re.sub(r"^\s*\d+[.)]\s*", "", item).strip(" \t.!?:-")
    item = _ARTICLE.sub("", item.strip())
    if not item or _NONE.match(item):
        return []
    nouns = extract_nouns(item, vocab)
    if nouns:
        return nouns
    words = item.split()
    if len(words) > _MAX_ITEM_WORDS or not re.fullmatch(r"[A-Za-z][A-Za-z \-]*", item):
        return []
    # Open vocabulary: the LLM may name a sounding object our lists lack ("kettle").
    return [canonical(item)]


def _from_items(items: list[str], vocab: Vocabulary) -> list[str]:
    out: list[str] = []
    for item in items:
        for cue in _clean_item(item, vocab):
            if cue not in out:
                out.append(cue)
    return out


def _json_items(text: str) -> list[str] | None:
    for match in re.finditer(r"[\[{]", text):
        try:
            value, _ = json.JSONDecoder().raw_decode(text[match.start():])
        except ValueError:
            continue
        if isinstance(value, dict):
            lowered = {str(k).lower(): v for k, v in value.items()}
            value = next((lowered[k] for k in _JSON_KEYS if k in lowered), None)
        if isinstance(value, str):
            return _SPLIT.split(value)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return None


def parse_answer(
    text: str | None, max_cues: int, vocab: Vocabulary | None = None, caption: str | None = None
) -> ParsedAnswer:
    """Cue list from an LLM answer; see the module docstring for the order of attempts.

    ``caption``: the description the LLM reasoned from. In the prose fallback only nouns
    the caption also mentions are kept (a rambling model names random things), and if
    none are left the caption's own nouns are used, as TeSO-n would.
    """
    vocab = vocab or default_vocabulary()

    def done(texts: list[str], method: str) -> ParsedAnswer:
        return ParsedAnswer(texts[:max_cues], method)

    if not text or not text.strip():
        return done([], "empty")
    strict = _STRICT.findall(text)
    if strict:
        answer = strict[-1].strip()  # the last one: reasoning may quote the format earlier
        if _NONE.match(answer):
            return done([], "none")
        items = _json_items(answer) or _SPLIT.split(answer)
        cues = _from_items(items, vocab)
        # The model answered in the format; an answer line naming nothing usable means none.
        return done(cues, "strict" if cues else "none")
    json_items = _json_items(text)
    if json_items is not None:
        return done(_from_items(json_items, vocab), "json")
    if _REFUSAL.search(text):
        return done([], "refusal")
    list_items = _LIST_ITEM.findall(text)
    if list_items:
        cues = _from_items(list_items, vocab)
        if cues:
            return done(cues, "list")
    prose = extract_nouns(text, vocab)
    if caption is not None:
        in_caption = extract_nouns(caption, vocab)
        prose = [c for c in prose if c in in_caption] or in_caption
    return done(prose, "prose")
