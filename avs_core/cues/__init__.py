"""Scene text cues (TeSO §3.2): captioner + LLM reasoner, noun parser, audio-tagger fallback.

Heavy backends (transformers) are imported only when a provider that needs them is built.
"""
from .providers import build_cue_provider
from .refresher import CueRefresher
from .types import NO_CUES, PAD_CUE, CueProvider, Cues, pad_cues

__all__ = ["Cues", "CueProvider", "CueRefresher", "NO_CUES", "PAD_CUE", "build_cue_provider", "pad_cues"]
