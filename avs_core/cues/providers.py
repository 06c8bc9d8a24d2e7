"""Cue backends and the choice between them.

Best first: captioner + LLM reasoner (TeSO), captioner + noun parser (TeSO-n),
audio-tagger labels (works with only the shared assets). ``build_cue_provider``
takes the ``cues`` config section:

    cues:
      backend: auto        # auto | reasoner | nouns | tagger | detector (opt-in, never chosen by auto)
      process: false       # build and run the backend in a child process (no GIL contention)
      process_threads: null  # torch threads in that process (null: torch default)
      process_timeout_s: 300   # a cue request unanswered this long kills the process; the next one restarts it
      max_cues: 5          # N_T
      captioner: {path: null, device: auto, dtype: auto, prompt_style: auto, prompt: null, max_new_tokens: 160}
                   # prompt_style: chat (instruction models), text (prompt as text input, e.g. Florence-2's
                   # "<MORE_DETAILED_CAPTION>"), none (plain captioning); auto = chat if a template exists.
                   # prompt null = the paper's dense-caption instruction.
      reasoner:  {path: null, device: auto, dtype: auto, max_new_tokens: 256}
      tagger:    {min_score: 0.1, top_k: 10}   # EfficientAT probabilities on 1-s windows run low
      detector:  {kind: yolox, min_score: 0.3}   # + avs_core.vision keys (assets_dir, num_threads, ...)
"""
from __future__ import annotations

import functools
import logging
from abc import abstractmethod
from typing import Any, Callable, Mapping

from ..config import get, merge
from ..errors import AVSError, ConfigError, InputError
from .nouns import extract_nouns
from .parser import parse_answer
from .tagger_cues import TaggerCueProvider, TagFn
from .types import CueProvider, Cues
from .vocabulary import Vocabulary, default_vocabulary

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "backend": "auto",
    "process": False,
    "process_threads": None,
    "process_timeout_s": 300.0,
    "max_cues": 5,
    "captioner": {"path": None, "device": "auto", "dtype": "auto", "prompt_style": "auto", "prompt": None,
                  "max_new_tokens": 160},
    "reasoner": {"path": None, "device": "auto", "dtype": "auto", "max_new_tokens": 256},
    "tagger": {"min_score": 0.1, "top_k": 10},
    "detector": {"kind": "yolox", "min_score": 0.3},
}
BACKENDS = ("auto", "reasoner", "nouns", "tagger", "detector")


class _CaptionProvider(CueProvider):
    """Shared part of the caption-based backends: frames -> captions -> cue texts."""

    def __init__(self, captioner, max_cues: int, vocabulary: Vocabulary | None):
        self.captioner = captioner
        self.max_cues = int(max_cues)
        self.vocab = vocabulary or default_vocabulary()

    @abstractmethod
    def _texts_and_sources(self, captions: list[str]) -> list[tuple[list[str], str]]:
        """(cue texts, source name) for each caption."""

    def compute_batch(self, frames, audios, sample_rate, stamps) -> list[Cues]:
        if any(f is None for f in frames):
            raise InputError(f"{self.source} cues need a frame for every item")
        captions = self.captioner.caption_batch(list(frames))
        return [
            Cues(tuple(texts), source, stamp, age_s=0.0, caption=caption)
            for (texts, source), caption, stamp in zip(self._texts_and_sources(captions), captions, stamps)
        ]


class CaptionNounProvider(_CaptionProvider):
    """TeSO-n: the vocabulary nouns of the dense caption."""

    source = "captioner+nouns"

    def _texts_and_sources(self, captions):
        return [(extract_nouns(c, self.vocab, self.max_cues), self.source) for c in captions]


class CaptionReasonerProvider(_CaptionProvider):
    """TeSO: a frozen LLM reasons which captioned objects can sound."""

    source = "captioner+reasoner"
    # Reported instead when the LLM missed the answer format and the prose fallback was used.
    fallback_source = "captioner+reasoner(fallback:nouns)"

    def __init__(self, captioner, reasoner, max_cues: int, vocabulary: Vocabulary | None = None):
        super().__init__(captioner, max_cues, vocabulary)
        self.reasoner = reasoner

    def _texts_and_sources(self, captions):
        out = []
        for caption, answer in zip(captions, self.reasoner.reason_batch(captions)):
            parsed = parse_answer(answer, self.max_cues, self.vocab, caption=caption)
            if parsed.method == "prose":
                log.debug("reasoner answer missed the format, using caption nouns: %.200r", answer)
            out.append((parsed.texts, self.fallback_source if parsed.method == "prose" else self.source))
        return out


def _section(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    out = merge(DEFAULTS, dict(cfg or {}))
    for key, default in DEFAULTS.items():
        if isinstance(default, dict) and not isinstance(out[key], Mapping):
            raise ConfigError(f"cues.{key} must be a mapping, got {out[key]!r}")
    return out


def _build_captioner(cfg: Mapping[str, Any]):
    from .captioner import Captioner  # lazy: pulls in transformers
    from .prompts import CAPTION_PROMPT

    c = cfg["captioner"]  # merged with DEFAULTS: every key is present
    return Captioner.from_pretrained(
        c["path"], device=c["device"], dtype=c["dtype"], prompt=c["prompt"] or CAPTION_PROMPT,
        prompt_style=c["prompt_style"], max_new_tokens=c["max_new_tokens"],
    )


def _build_reasoner(cfg: Mapping[str, Any]):
    from .reasoner import Reasoner

    r = cfg["reasoner"]
    return Reasoner.from_pretrained(
        r["path"], device=r["device"], dtype=r["dtype"], max_cues=cfg["max_cues"], max_new_tokens=r["max_new_tokens"],
    )


def _build_tagger(cfg: Mapping[str, Any], tag_fn: TagFn | None) -> TaggerCueProvider:
    t = cfg["tagger"]
    kwargs = dict(max_cues=cfg["max_cues"], min_score=t["min_score"])
    if tag_fn is not None:
        return TaggerCueProvider(tag_fn, **kwargs)
    return TaggerCueProvider.from_assets(top_k=t["top_k"], **kwargs)


def build_cue_provider(cfg: Mapping[str, Any] | None, tag_fn: TagFn | None = None) -> CueProvider:
    """The configured backend; with ``backend: auto`` the best one whose models load.

    ``tag_fn(samples, sr) -> [(label, score)]`` (e.g. ``pipe.audio_tags``) lets the tagger
    backend share the pipeline's tagger instead of loading a second one.
    Explicitly chosen backends raise ConfigError/AssetError when they cannot be built;
    ``auto`` logs why a better backend was skipped and falls back.
    """
    cfg = _section(cfg)
    if cfg["process"]:
        from .process_provider import ProcessCueProvider

        if tag_fn is not None:
            log.info("cues.process: the cue process loads its own tagger; the given tag_fn is not used there")
        return ProcessCueProvider(build_cue_provider, dict(cfg, process=False),
                                  request_timeout_s=float(cfg["process_timeout_s"]), torch_threads=cfg["process_threads"])
    backend = cfg["backend"]
    if backend not in BACKENDS:
        raise ConfigError(f"cues.backend must be one of {BACKENDS}, got {backend!r}")
    max_cues = int(cfg["max_cues"])
    if max_cues < 1:
        raise ConfigError(f"cues.max_cues (N_T) must be >= 1, got {max_cues}")

    builders: list[tuple[str, Callable[[], CueProvider]]] = []
    captioner = functools.cache(lambda: _build_captioner(cfg))  # loaded once if the reasoner then fails
    has_captioner = bool(get(cfg, "captioner.path"))
    has_reasoner = bool(get(cfg, "reasoner.path"))
    if backend == "reasoner" or (backend == "auto" and has_captioner and has_reasoner):
        builders.append(("reasoner", lambda: CaptionReasonerProvider(captioner(), _build_reasoner(cfg), max_cues)))
    if backend == "nouns" or (backend == "auto" and has_captioner):
        builders.append(("nouns", lambda: CaptionNounProvider(captioner(), max_cues, None)))
    if backend in ("tagger", "auto"):
        builders.append(("tagger", lambda: _build_tagger(cfg, tag_fn)))
    if backend == "detector":
        from .vision_cues import VisionCueProvider

        builders.append(("detector", lambda: VisionCueProvider.from_config(cfg["detector"], max_cues)))

    errors: list[str] = []
    for name, build in builders:
        try:
            provider = build()
        except AVSError as exc:
            if backend != "auto":
                raise
            errors.append(f"{name}: {exc}")
            log.warning("cue backend %s unavailable, trying the next one: %s", name, exc)
            continue
        log.info("text cues from backend %s", provider.source)
        return provider
    raise ConfigError("no cue backend could be built: " + "; ".join(errors))
