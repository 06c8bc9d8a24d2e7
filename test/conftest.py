"""Shared fixtures: real assets (skipped with a clear reason when the assets folder is absent)."""
from __future__ import annotations

import numpy as np
import pytest

from avs_core import assets
from avs_core.errors import AssetError


def asset_path(name: str):
    try:
        return assets.resolve(name)
    except AssetError as exc:
        pytest.skip(f"shared asset unavailable: {exc}")


@pytest.fixture(scope="session")
def asset():
    return asset_path


@pytest.fixture(scope="session")
def speech_1s():
    from avs_core.audio.frontend import read_audio, to_mono_float

    samples, sr = read_audio(asset_path("speech"))
    mono = to_mono_float(samples, sr)
    return mono[2 * sr:3 * sr], sr


@pytest.fixture(scope="session")
def zero_shot_pipeline():
    from avs_core.pipeline import AVSPipeline

    asset_path("efficientat_mn04")
    return AVSPipeline.from_config({"device": "cpu"})


def white_noise(seconds: float, sr: int, rms: float = 0.1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, rms, int(seconds * sr)).astype(np.float32)
