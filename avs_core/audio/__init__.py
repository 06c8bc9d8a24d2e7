"""Audio: input front-end (validation, mono, resampling, windows, silence gate) and the AudioSet tagger."""
from __future__ import annotations

from .frontend import AudioFrontend, is_silent, level_dbfs, read_audio, resample, to_mono_float
from .tagger import AudioTagger, TagResult

__all__ = [
    "AudioFrontend",
    "AudioTagger",
    "TagResult",
    "is_silent",
    "level_dbfs",
    "read_audio",
    "resample",
    "to_mono_float",
]
