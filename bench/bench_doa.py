"""Direction of arrival: error vs SNR and RT60, estimator comparison, instance selection, speed.

Every number comes from pyroomacoustics shoebox simulations (test/doa_sim.py) of a flat microphone
board at the camera hearing the shared speech/typing recordings from random azimuths in [-50, 50]
degrees, with spherically diffuse noise at the given SNR. Estimators, side by side on the same
recordings:

  avs      avs_core.audio.doa.SRPPhat (block voting; the one the pipeline uses)
  pooled   the same SRP-PHAT pooling every block (no voting)
  avs 300-7600 Hz   the same with the band not clipped at the array's alias-free frequency
  pra-*    pyroomacoustics.doa SRP, MUSIC, NormMUSIC (reference implementations, same band and STFT)

"2 talkers": the source plus a second talker 6 dB weaker 25-45 degrees away (SNR 10 dB).

Instance selection: two candidate people in a 90 degree view, at the source's azimuth (within
+-35 degrees) and at another azimuth 25-45 degrees away, optionally a second (interfering) talker at the other person's place
6 dB weaker; accuracy = the fusion keeps exactly the talking one.

Usage: python bench/bench_doa.py [--array respeaker_4mic] [--trials 8] [--threads 2]
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--array", default="respeaker_4mic")
ap.add_argument("--trials", type=int, default=8, help="recordings per (SNR, RT60) cell")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--seed", type=int, default=0)
args = ap.parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)  # before numpy loads: the robot's 2 cores

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "test"))
import doa_sim  # noqa: E402
import pyroomacoustics as pra  # noqa: E402

from avs_core.audio.doa import PRESETS, MicArray, SRPPhat  # noqa: E402
from avs_core.doa_fusion import DirectionStage  # noqa: E402
from avs_core.geometry import OPTICAL_FROM_BODY, CameraModel  # noqa: E402
from avs_core.pipeline import pipeline_config  # noqa: E402
from avs_core.types import Instance  # noqa: E402

FORWARD, UP = np.array([0.0, 0.0, 1.0]), np.array([0.0, -1.0, 0.0])
SNRS, RT60S = (0.0, 10.0, 20.0, 30.0), (0.2, 0.4, 0.6)
W, H = 640, 480
CAMERA = CameraModel.from_intrinsics([W / 2, 0, W / 2, 0, W / 2, H / 2, 0, 0, 1], W, H)  # 90 degree view


class UnclippedArray(MicArray):
    """The same array with its alias-free limit ignored: what a full-band SRP-PHAT would do."""

    def alias_free_hz(self, c: float = 343.0) -> float:
        return float("inf")


def wrap(deg: float) -> float:
    return (deg + 180.0) % 360.0 - 180.0


class PraEstimator:
    """pyroomacoustics.doa in the board plane; azimuth converted to 'positive right of forward'."""

    def __init__(self, name: str, board_xy: np.ndarray, band: tuple[float, float], nfft: int = 512):
        self.nfft, self.band = nfft, list(band)
        self.doa = pra.doa.algorithms[name](board_xy, doa_sim.SIM_RATE, nfft, c=343.0, num_src=1)

    def azimuth(self, x: np.ndarray) -> float:
        frames = np.array([pra.transform.stft.analysis(x[:, m], self.nfft, self.nfft // 2).T for m in range(x.shape[1])])
        self.doa.locate_sources(frames, freq_range=self.band)
        return wrap(-math.degrees(float(self.doa.azimuth_recon[0])))  # board y is left: right is negative


def make_recording(rng, board_opt, rt60, snr, interferer=False, max_az=50.0):
    """(x, azimuth, other azimuth): a random source, and optionally an interferer 6 dB weaker."""
    az = float(rng.uniform(-max_az, max_az))
    # The other person: 25-45 degrees away, on the side that keeps both in view.
    side = -np.sign(az) if abs(az) > 10 else rng.choice([-1, 1])
    other = float(az + side * rng.uniform(25, 45))
    name = str(rng.choice(["speech", "typing"]))
    clip = doa_sim.load_mono(name, 1.0, float(rng.uniform(0.0, 8.5)))
    seed = int(rng.integers(1 << 30))
    x = doa_sim.simulate(board_opt, [(clip, az, 0.0)], rt60, snr, seed=seed)
    if interferer:
        other_clip = doa_sim.load_mono("typing" if name == "speech" else "speech", 1.0, float(rng.uniform(0.0, 8.5)))
        y = doa_sim.simulate(board_opt, [(other_clip, other, 0.0)], rt60, None, seed=seed + 1)
        x = x + y * math.sqrt(np.mean(x ** 2) / np.mean(y ** 2) / 10 ** (6 / 10))
    return x.astype(np.float32), az, other


def column_instance(azimuth: float) -> Instance:
    c = int(round(W / 2 + CAMERA.K[0, 0] * math.tan(math.radians(azimuth))))
    mask = np.zeros((H, W), bool)
    mask[80:460, max(0, c - 40):min(W, c + 40)] = True
    return Instance("person", mask, mask.astype(np.float32), 0.6, 0.8, 0.75, None, "bench")


def main() -> None:
    rng = np.random.default_rng(args.seed)
    board = np.array(PRESETS[args.array]["positions"])
    board_opt = board @ OPTICAL_FROM_BODY.T
    array = MicArray(board_opt, args.array)
    avs = SRPPhat(array, doa_sim.SIM_RATE)
    pooled = SRPPhat(array, doa_sim.SIM_RATE, vote_radius_deg=180.0)
    full_band = SRPPhat(UnclippedArray(board_opt, args.array), doa_sim.SIM_RATE, band_hz=(300.0, 7600.0))
    confidences: list[float] = []

    def avs_azimuth(x):
        est = avs.estimate(x, doa_sim.SIM_RATE, FORWARD, UP)
        confidences.append(est.confidence)
        return est.azimuth_deg

    ests = {"avs": avs_azimuth,
            "pooled": lambda x: pooled.estimate(x, doa_sim.SIM_RATE, FORWARD, UP).azimuth_deg,
            "avs 300-7600 Hz": lambda x: full_band.estimate(x, doa_sim.SIM_RATE, FORWARD, UP).azimuth_deg}
    for name in ("SRP", "MUSIC", "NormMUSIC"):
        ests[f"pra-{name}"] = PraEstimator(name, board.T[:2], avs.band_hz).azimuth
    print(f"array {args.array}: {array.num_mics} mics, band {avs.band_hz[0]:.0f}-{avs.band_hz[1]:.0f} Hz "
          f"(alias-free limit), {args.trials} recordings per cell, azimuth in [-50, 50] deg, threads {args.threads}")

    errors: dict[tuple[str, float, float], list[float]] = {}
    times: dict[str, list[float]] = {k: [] for k in ests}
    for rt60 in RT60S:
        for snr in SNRS:
            for _ in range(args.trials):
                x, az, _ = make_recording(rng, board_opt, rt60, snr)
                for name, fn in ests.items():
                    t0 = time.perf_counter()
                    got = fn(x)
                    times[name].append((time.perf_counter() - t0) * 1e3)
                    errors.setdefault((name, rt60, snr), []).append(abs(wrap(got - az)))
    mixed: dict[str, list[float]] = {k: [] for k in ests}  # + a second talker 6 dB weaker, SNR 10 dB
    for rt60 in RT60S:
        for _ in range(args.trials * 2):
            x, az, _ = make_recording(rng, board_opt, rt60, 10.0, interferer=True)
            for name, fn in ests.items():
                mixed[name].append(abs(wrap(fn(x) - az)))

    print("\n## DOA error (degrees): median / p90 per RT60 (rows) and SNR (columns), estimator 'avs'\n")
    print("| RT60 \\ SNR | " + " | ".join(f"{s:.0f} dB" for s in SNRS) + " |")
    print("|---" * (len(SNRS) + 1) + "|")
    for rt60 in RT60S:
        cells = [errors[("avs", rt60, s)] for s in SNRS]
        print(f"| {rt60:.1f} s | " + " | ".join(f"{np.median(c):.1f} / {np.percentile(c, 90):.1f}" for c in cells) + " |")

    print("\n## Estimators on the same recordings: median / p90 error (deg) over all cells, ms per 1 s window\n")
    print("| estimator | median | p90 | worst | SNR 0 dB p90 | RT60 0.6 s p90 | 2 talkers: median / p90 / >15 deg "
          "| ms / window (median) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ests:
        all_e = [e for (n, _, _), v in errors.items() if n == name for e in v]
        snr0 = [e for (n, _, s), v in errors.items() if n == name and s == 0.0 for e in v]
        rt6 = [e for (n, r, _), v in errors.items() if n == name and r == 0.6 for e in v]
        print(f"| {name} | {np.median(all_e):.1f} | {np.percentile(all_e, 90):.1f} | {max(all_e):.1f} | "
              f"{np.percentile(snr0, 90):.1f} | {np.percentile(rt6, 90):.1f} | {np.median(mixed[name]):.1f} / "
              f"{np.percentile(mixed[name], 90):.1f} / {np.mean(np.array(mixed[name]) > 15):.0%} | "
              f"{np.median(times[name]):.1f} |")

    noise = [avs.estimate(doa_sim.diffuse_noise(board_opt, doa_sim.SIM_RATE, seed=s).T.astype(np.float32),
                          doa_sim.SIM_RATE, FORWARD, UP).confidence for s in range(8)]
    talker = confidences[:len(RT60S) * len(SNRS) * args.trials]  # single-talker recordings
    print(f"\nconfidence (avs): diffuse noise alone max {max(noise):.2f} over 8 windows; one talker "
          f"p10 {np.percentile(talker, 10):.2f}, median {np.median(talker):.2f}, "
          f"below min_confidence 0.2: {np.mean(np.array(talker) < 0.2):.0%}")

    stage = DirectionStage.from_config(pipeline_config({"doa": {"mic_array": board_opt.tolist(),
                                                                "array_to_camera": {"rotation": "optical"}}})["doa"])
    print("\n## Instance selection (two people; SNR 10 dB): share of windows where only the talker is kept\n")
    print("| RT60 | alone: correct | alone: fallback (low confidence) | + talker 6 dB weaker at the other person: correct "
          "| fallback | wrong |")
    print("|---|---|---|---|---|---|")
    for rt60 in RT60S:
        row = []
        for interferer in (False, True):
            correct = fallback = wrong = 0
            for _ in range(args.trials * 2):
                x, az, other = make_recording(rng, board_opt, rt60, 10.0, interferer, max_az=35.0)
                people = [column_instance(az), column_instance(other)]
                res = stage.locate(x, doa_sim.SIM_RATE, 1.0, CAMERA, None, (H, W))
                res, _ = stage.fuse(res, np.zeros((H, W), np.float32), people)
                if not res.used:
                    fallback += 1
                elif res.chosen == [0]:
                    correct += 1
                else:
                    wrong += 1
            n = args.trials * 2
            row += [f"{correct / n:.0%}", f"{fallback / n:.0%}"] + ([f"{wrong / n:.0%}"] if interferer else [])
        print(f"| {rt60:.1f} s | " + " | ".join(row) + " |")

    x, _, _ = make_recording(rng, board_opt, 0.3, 10.0)
    res = stage.locate(x, doa_sim.SIM_RATE, 1.0, CAMERA, None, (H, W))
    t0 = time.perf_counter()
    for _ in range(20):
        stage.locate(x, doa_sim.SIM_RATE, 1.0, CAMERA, None, (H, W))
    per = (time.perf_counter() - t0) / 20 * 1e3
    print(f"\nwhole direction stage (estimate + 640x480 likelihood) per window: {per:.1f} ms "
          f"(estimate {res.estimate.timings_ms['doa']:.1f} ms, projection {res.estimate.timings_ms['doa_project']:.1f} ms)")


if __name__ == "__main__":
    main()
