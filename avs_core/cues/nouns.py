"""TeSO-n: potential sounding objects as the vocabulary nouns a caption mentions.

No POS tagger ships its data on PyPI, so nouns are found by matching lemmatised
word n-grams (longest first) against the sounding-object vocabulary, and a match
that reads as a verb in context ("a man *saw* a log", "she *drums* the table",
"to *train*") is skipped.
"""
from __future__ import annotations

import re
from functools import lru_cache

from lemminflect import getAllLemmas

from .vocabulary import Vocabulary, default_vocabulary, lemma

_WORD = re.compile(r"[a-z]+")
_DETERMINERS = frozenset(
    "a an the this that these those his her their its my your our some any two three four several many "
    "another each every one".split()
)
# Words after which an ambiguous noun/verb token is a verb.
_VERB_CUES_BEFORE = frozenset(
    "to will would can could may might must should shall does do did i you he she it we they who which "
    "also often then".split()
)


@lru_cache(maxsize=65536)
def _can_be_verb(word: str) -> bool:
    return "VERB" in getAllLemmas(word)


def _reads_as_verb(words: list[str], i: int, prev_was_noun: bool) -> bool:
    if not _can_be_verb(words[i]):
        return False
    prev = words[i - 1] if i > 0 else ""
    nxt = words[i + 1] if i + 1 < len(words) else ""
    if prev in _DETERMINERS:
        return False
    return prev in _VERB_CUES_BEFORE or nxt in _DETERMINERS or prev_was_noun


def extract_nouns(text: str, vocab: Vocabulary | None = None, max_cues: int | None = None) -> list[str]:
    """Canonical cue names mentioned in ``text``, in order of first mention, deduplicated."""
    vocab = vocab or default_vocabulary()
    words = _WORD.findall(text.lower())
    lemmas = [lemma(w) for w in words]
    cues: list[str] = []
    i, prev_end = 0, -1
    while i < len(words):
        for n in range(min(vocab.max_words, len(words) - i), 0, -1):
            cue = vocab.terms.get(" ".join(lemmas[i : i + n]))
            if cue is None or (n == 1 and _reads_as_verb(words, i, prev_end == i)):
                continue
            if cue not in cues:
                cues.append(cue)
                if max_cues is not None and len(cues) >= max_cues:
                    return cues
            i += n
            prev_end = i
            break
        else:
            i += 1
    return cues
