"""Direction of arrival (avs_core.audio.doa) on pyroomacoustics room simulations with known source directions."""
from __future__ import annotations

import functools
import logging

import numpy as np
import pytest

from conftest import asset_path, require_package
from avs_core.audio.doa import PRESETS, MicArray, SRPPhat, build_estimator
from avs_core.errors import ConfigError, InputError
from avs_core.geometry import OPTICAL_FROM_BODY

require_package("pyroomacoustics", "room simulation for DOA tests (requirements.txt)")
import doa_sim  # noqa: E402  (needs pyroomacoustics)

FORWARD, UP = np.array([0.0, 0.0, 1.0]), np.array([0.0, -1.0, 0.0])  # optical frame view


def optical(preset: str) -> np.ndarray:
    """A board lying flat (board frame = body frame) at the camera, in the optical frame."""
    return np.array(PRESETS[preset]["positions"]) @ OPTICAL_FROM_BODY.T


@functools.lru_cache(maxsize=None)
def recording(preset: str, sources: tuple, rt60: float, snr_db: float | None, seed: int = 0) -> np.ndarray:
    """Cached simulation; sources = ((asset, azimuth, elevation), ...), 1 s clips from 2 s in."""
    for name, _, _ in sources:
        asset_path(name)  # skips (fails in strict mode) when the recording is missing
    signals = [(doa_sim.load_mono(name, 1.0, 2.0), az, el) for name, az, el in sources]
    return doa_sim.simulate(optical(preset), signals, rt60, snr_db, seed=seed)


def estimator(preset: str) -> SRPPhat:
    return SRPPhat(MicArray(optical(preset), preset), doa_sim.SIM_RATE)


@pytest.mark.parametrize("azimuth", [-25.0, 25.0])
@pytest.mark.parametrize("rt60,snr_db,source", [(0.3, 10.0, "speech"), (0.6, 10.0, "speech"), (0.2, 0.0, "typing")])
def test_respeaker_4mic_azimuth_in_reverberant_noisy_rooms(azimuth, rt60, snr_db, source):
    x = recording("respeaker_4mic", ((source, azimuth, 0.0),), rt60, snr_db)
    est = estimator("respeaker_4mic").estimate(x, doa_sim.SIM_RATE, FORWARD, UP)
    assert est.resolved == "azimuth" and est.elevation_deg is None  # a flat board cannot tell up from down
    assert abs(est.azimuth_deg - azimuth) < 10.0, est
    assert est.confidence > 0.2


def test_interfering_source_does_not_capture_the_estimate():
    # Speech at +25 deg, typing 6 dB weaker at -40 deg, plus diffuse noise.
    x_target = recording("respeaker_4mic", (("speech", 25.0, 0.0),), 0.3, None)
    x_interf = recording("respeaker_4mic", (("typing", -40.0, 0.0),), 0.3, 20.0, seed=1)
    gain = np.sqrt(np.mean(x_target ** 2) / np.mean(x_interf ** 2) / 10 ** (6 / 10))
    est = estimator("respeaker_4mic").estimate(x_target + gain * x_interf, doa_sim.SIM_RATE, FORWARD, UP)
    assert abs(est.azimuth_deg - 25.0) < 10.0


def test_diffuse_noise_alone_has_low_confidence():
    noise = doa_sim.diffuse_noise(optical("respeaker_4mic"), doa_sim.SIM_RATE, seed=3).T.astype(np.float32)
    est = estimator("respeaker_4mic").estimate(noise, doa_sim.SIM_RATE, FORWARD, UP)
    speech = estimator("respeaker_4mic").estimate(
        recording("respeaker_4mic", (("speech", 25.0, 0.0),), 0.6, 0.0), doa_sim.SIM_RATE, FORWARD, UP)
    # pipeline.doa.min_confidence (0.2) must separate a reverberant source at 5 dB SNR from noise.
    assert est.confidence < 0.2 < speech.confidence


def test_volumetric_array_resolves_elevation():
    x = recording("tetrahedron_4mic", (("speech", -20.0, 15.0),), 0.3, 10.0)
    est = estimator("tetrahedron_4mic").estimate(x, doa_sim.SIM_RATE, FORWARD, UP)
    assert est.resolved == "full"
    assert abs(est.azimuth_deg + 20.0) < 10.0 and abs(est.elevation_deg - 15.0) < 10.0


def test_linear_array_reports_the_cone_as_azimuth_only():
    x = recording("linear_4mic", (("speech", 25.0, 0.0),), 0.2, 20.0)
    est = estimator("linear_4mic").estimate(x, doa_sim.SIM_RATE, FORWARD, UP)
    assert est.resolved == "cone" and est.elevation_deg is None
    assert abs(est.azimuth_deg - 25.0) < 10.0


def test_agrees_with_pyroomacoustics_srp_reference():
    pra = require_package("pyroomacoustics")
    x = recording("respeaker_6mic", (("speech", 30.0, 0.0),), 0.3, 10.0)
    nfft = 512
    frames = np.array([pra.transform.stft.analysis(x[:, m], nfft, nfft // 2).T for m in range(x.shape[1])])
    # pyroomacoustics works in the array's own plane: the board frame (x forward, y left), azimuth to the left.
    board = np.array(PRESETS["respeaker_6mic"]["positions"]).T[:2]
    ref = pra.doa.algorithms["SRP"](board, doa_sim.SIM_RATE, nfft, c=343.0, num_src=1)
    ref.locate_sources(frames, freq_range=[300.0, 3700.0])
    ref_right = -float(np.degrees(ref.azimuth_recon[0]))
    ref_right = (ref_right + 180.0) % 360.0 - 180.0
    est = estimator("respeaker_6mic").estimate(x, doa_sim.SIM_RATE, FORWARD, UP)
    assert abs(est.azimuth_deg - ref_right) < 4.0, (est.azimuth_deg, ref_right)


# -- bad input ------------------------------------------------------------------------------------

def test_channel_count_mismatch_is_a_clear_error():
    est = estimator("respeaker_4mic")
    with pytest.raises(InputError, match="6 channels but mic array 'respeaker_4mic' has 4"):
        est.estimate(np.zeros((16000, 6), np.float32), doa_sim.SIM_RATE)
    with pytest.raises(InputError, match="multi-channel"):
        est.estimate(np.zeros(16000, np.float32), doa_sim.SIM_RATE)


def test_coincident_microphones_are_rejected():
    with pytest.raises(ConfigError, match="microphones 1 and 2 .* coincident"):
        MicArray.from_config([[0, 0, 0], [0.05, 0, 0], [0.05, 0.0005, 0]])
    with pytest.raises(ConfigError, match="unknown mic array preset"):
        MicArray.from_config("respeaker_5mic")


def test_spacing_that_aliases_over_the_whole_band_is_rejected():
    wide = MicArray.from_config([[0, 0, 0], [1.0, 0, 0], [0, 1.0, 0]])  # 1 m apart: aliases above 171 Hz
    with pytest.raises(ConfigError, match="aliases above 172 Hz"):
        SRPPhat(wide, 16000)


def test_band_above_the_alias_limit_is_clipped_with_a_warning(caplog):
    arr = MicArray.from_config("respeaker_4mic")  # nearest neighbours 57.3 mm apart: c / 2d = 2994 Hz
    with caplog.at_level(logging.WARNING):
        est = build_estimator({"band_hz": [300.0, 7000.0]}, arr, 48000)
    assert "aliases above 2994 Hz" in caplog.text
    assert est.band_hz[1] == pytest.approx(343.0 / (2 * 0.0405 * np.sqrt(2)))
    assert build_estimator({"band_hz": [300.0, 2000.0]}, arr, 16000).band_hz == (300.0, 2000.0)


def test_flat_ros_parameter_positions():
    arr = MicArray.from_config([0.0, 0.03, 0.0, 0.0, -0.03, 0.0])
    assert arr.positions.shape == (2, 3) and arr.shape()[0] == 1
