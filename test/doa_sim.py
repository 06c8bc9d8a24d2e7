"""Room-acoustics simulation (pyroomacoustics) of a microphone array hearing known sources.

Shared by the DOA tests and bench/bench_doa.py. Directions are given like the camera sees
them: azimuth positive to the right of the optical axis, elevation positive up. Array
positions are in the camera optical frame (x right, y down, z forward), centred on the camera.
"""
from __future__ import annotations

import functools
import math

import numpy as np

ROOM_DIM = (7.0, 6.0, 3.0)
CAMERA_AT = np.array([2.0, 3.0, 1.4])  # room coordinates (x along the room, z up); camera looks along +x
SIM_RATE = 16000
# Room axes in the camera optical frame: v_room = R @ v_optical.
ROOM_FROM_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def optical_direction(azimuth_deg: float, elevation_deg: float = 0.0) -> np.ndarray:
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return np.array([math.sin(az) * math.cos(el), -math.sin(el), math.cos(az) * math.cos(el)])


@functools.lru_cache(maxsize=None)
def _room_params(rt60: float) -> tuple[float, int]:
    import pyroomacoustics as pra

    absorption, max_order = pra.inverse_sabine(rt60, ROOM_DIM)
    # Image sources beyond order 12 add little to the direct path's localisation, but cost cubic time.
    return float(absorption), int(min(max_order, 12))


def diffuse_noise(array_optical: np.ndarray, n: int, seed: int = 0, directions: int = 256,
                  c: float = 343.0) -> np.ndarray:
    """(M, n) spherically isotropic noise: independent white plane waves from ``directions``
    nearly uniform directions, delayed per microphone in the frequency domain."""
    from avs_core.audio.doa import fibonacci_sphere

    rng = np.random.default_rng(seed)
    pos = np.asarray(array_optical, float)
    dirs = fibonacci_sphere(directions)
    freqs = np.fft.rfftfreq(n, 1.0 / SIM_RATE)
    spectra = np.fft.rfft(rng.normal(0, 1, (directions, n)), axis=1)  # (D, F)
    delays = dirs @ pos.T / c  # (D, M): mic m hears direction d this much earlier
    out = np.einsum("df,dmf->mf", spectra, np.exp(2j * np.pi * freqs[None, None, :] * delays[:, :, None]))
    return np.fft.irfft(out, n=n, axis=1)


def simulate(array_optical: np.ndarray, sources: list[tuple[np.ndarray, float, float]], rt60: float,
             snr_db: float | None = None, distance_m: float = 2.0, seed: int = 0) -> np.ndarray:
    """(n, M) float32 at SIM_RATE: ``sources`` = [(mono signal at SIM_RATE, azimuth, elevation)].

    The first source is the target; every source is reverberated by the shoebox room. With
    ``snr_db``, spherically diffuse noise is added at that target-to-noise ratio (power averaged
    over the microphones).
    """
    import pyroomacoustics as pra

    absorption, max_order = _room_params(float(rt60))
    room = pra.ShoeBox(ROOM_DIM, fs=SIM_RATE, materials=pra.Material(absorption), max_order=max_order)
    mics = CAMERA_AT[:, None] + ROOM_FROM_OPTICAL @ np.asarray(array_optical, float).T
    room.add_microphone_array(mics)
    n = max(len(s) for s, _, _ in sources)
    for signal, az, el in sources:
        pos = CAMERA_AT + distance_m * (ROOM_FROM_OPTICAL @ optical_direction(az, el))
        room.add_source(pos.tolist(), signal=np.asarray(signal, float))
    premix = room.simulate(return_premix=True)[:, :, :n]  # (sources, M, samples)
    target = premix[0]
    mix = premix.sum(axis=0)
    if snr_db is not None:
        noise = diffuse_noise(array_optical, mix.shape[1], seed)
        gain = math.sqrt(np.mean(target ** 2) / (np.mean(noise ** 2) * 10 ** (snr_db / 10)))
        mix = mix + gain * noise
    mix = mix / (np.abs(mix).max() + 1e-9) * 0.5
    return mix.T.astype(np.float32)


def load_mono(name: str, seconds: float, offset_s: float = 0.0) -> np.ndarray:
    """A shared recording (asset name) as mono float at SIM_RATE, ``seconds`` from ``offset_s``."""
    from avs_core import assets
    from avs_core.audio.frontend import read_audio, resample, to_mono_float

    samples, sr = read_audio(assets.resolve(name))
    mono = resample(to_mono_float(samples, sr), sr, SIM_RATE)
    start = int(offset_s * SIM_RATE)
    return mono[start:start + int(seconds * SIM_RATE)]
