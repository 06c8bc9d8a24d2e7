"""Direction of arrival (DOA) of the dominant sound from a microphone array: SRP-PHAT.

The estimator was chosen by measurement (``bench/bench_doa.py``, table in the README):
SRP-PHAT with a far-field steered response over a sphere of directions, computed
from band-limited PHAT cross-correlations of every microphone pair.

Conventions
-----------
Microphone positions are metres in the *array frame*. Directions are unit vectors in
that frame pointing from the array towards the source. Azimuth and elevation are
reported relative to a *view* (``forward`` and ``up`` unit vectors in the array frame,
normally the camera's optical axis and image-up): azimuth is positive to the right of
``forward``, elevation positive towards ``up``.

What an array can resolve depends on its shape, and the estimate says so
(``DOAEstimate.resolved``):

- ``"full"``: azimuth and elevation (a volumetric array, or a planar one facing the
  view, whose only ambiguity is front/back and is resolved as "in front");
- ``"azimuth"``: a planar array lying across ``up`` (e.g. a ReSpeaker board mounted flat)
  cannot tell above from below its plane, and its small aperture barely resolves
  elevation at all: only azimuth is reported;
- ``"cone"``: a linear array only resolves the angle to its axis.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, InputError

log = logging.getLogger(__name__)

SPEED_OF_SOUND = 343.0  # m/s in air at about 20 degrees C
# Closer than this two microphones are the same point for any audible wavelength.
MIN_MIC_DISTANCE_M = 0.002


def _ring(radius: float, angles_deg: Sequence[float]) -> list[list[float]]:
    return [[round(radius * math.cos(math.radians(a)), 6), round(radius * math.sin(math.radians(a)), 6), 0.0]
            for a in angles_deg]


# Named geometries, positions in metres in the *board frame* (x, y on the board, z out of its
# face). Channel order is the order the device delivers its raw microphone channels.
PRESETS: dict[str, dict[str, Any]] = {
    "respeaker_4mic": {
        "positions": [[-0.0405, 0.0, 0.0], [0.0, 0.0405, 0.0], [0.0405, 0.0, 0.0], [0.0, -0.0405, 0.0]],
        "doc": "ReSpeaker 4-Mic Array for Raspberry Pi: 4 mics on a 40.5 mm radius circle (ODAS "
               "respeaker_4_mic_array.cfg geometry), channels 1-4.",
    },
    "respeaker_usb_4mic": {
        "positions": [[-0.032, 0.0, 0.0], [0.0, -0.032, 0.0], [0.032, 0.0, 0.0], [0.0, 0.032, 0.0]],
        "doc": "ReSpeaker USB Mic Array v2.0 (6-channel firmware): raw mics are channels 1-4 on a "
               "32 mm radius circle (ODAS respeaker_usb_4_mic_array.cfg); pass only those 4 channels.",
    },
    "respeaker_6mic": {
        "positions": _ring(0.0463, [120, 180, 240, 300, 0, 60]),
        "doc": "ReSpeaker 6-Mic Circular Array: 6 mics on a 46.3 mm radius circle, 60 degrees apart "
               "(ODAS respeaker_6_mic_array.cfg).",
    },
    "linear_2mic": {
        "positions": [[0.0, 0.03, 0.0], [0.0, -0.03, 0.0]],
        "doc": "Two mics 60 mm apart on the board's y axis (a stereo pair / 2-mic HAT): resolves only "
               "the angle to that axis (a cone), i.e. azimuth when the axis is horizontal.",
    },
    "linear_4mic": {
        "positions": [[0.0, 0.06, 0.0], [0.0, 0.02, 0.0], [0.0, -0.02, 0.0], [0.0, -0.06, 0.0]],
        "doc": "Uniform linear array of 4 mics 40 mm apart on the board's y axis (cone, like linear_2mic).",
    },
    "tetrahedron_4mic": {
        "positions": [[0.025, 0.025, 0.025], [0.025, -0.025, -0.025], [-0.025, 0.025, -0.025],
                      [-0.025, -0.025, 0.025]],
        "doc": "4 mics on the corners of a regular tetrahedron (edge 70.7 mm), e.g. an ambisonic "
               "A-format capsule: volumetric, resolves azimuth and elevation.",
    },
}


@dataclass(frozen=True)
class MicArray:
    """Microphone positions (M, 3) in metres in the array frame, validated."""

    positions: np.ndarray
    name: str = "custom"

    def __post_init__(self):
        pos = np.asarray(self.positions, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[1] != 3 or pos.shape[0] < 2:
            raise ConfigError(f"mic positions must be a list of at least 2 [x, y, z] in metres, got shape {pos.shape}")
        if not np.all(np.isfinite(pos)):
            raise ConfigError("mic positions contain NaN/inf")
        dist = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
        i, j = np.triu_indices(len(pos), 1)
        close = dist[i, j] < MIN_MIC_DISTANCE_M
        if close.any():
            a, b = i[close][0], j[close][0]
            raise ConfigError(f"microphones {a} and {b} of array {self.name!r} are coincident "
                              f"({dist[a, b] * 1000:.2f} mm apart); direction needs distinct positions")
        object.__setattr__(self, "positions", pos)

    @classmethod
    def from_config(cls, value: Any) -> "MicArray":
        """A preset name, a list of [x, y, z], or a mapping with ``preset`` or ``positions``."""
        if isinstance(value, Mapping):
            value = value.get("preset") or value.get("positions")
        if isinstance(value, str):
            if value not in PRESETS:
                raise ConfigError(f"unknown mic array preset {value!r}; known: {', '.join(sorted(PRESETS))}")
            return cls(np.array(PRESETS[value]["positions"]), value)
        if value is None or value == "":
            raise ConfigError("no mic array given: set a preset name or positions [[x, y, z], ...] in metres")
        try:
            pos = np.asarray(value, dtype=np.float64)
            if pos.ndim == 1 and pos.size % 3 == 0:
                pos = pos.reshape(-1, 3)  # ROS parameters hold flat lists: [x0, y0, z0, x1, ...]
            return cls(pos)
        except (TypeError, ValueError):
            raise ConfigError(f"mic positions must be numbers [[x, y, z], ...] in metres, got {value!r}") from None

    @property
    def num_mics(self) -> int:
        return int(self.positions.shape[0])

    def shape(self) -> tuple[int, np.ndarray | None]:
        """(rank, axis): rank 1 linear (axis = its direction), 2 planar (axis = plane normal), 3 volumetric.

        Offsets below 10% of the aperture count as flat: they resolve too little to rely on.
        """
        centred = self.positions - self.positions.mean(axis=0)
        _, s, vt = np.linalg.svd(centred)
        rank = int(np.sum(s > 0.1 * s[0]))
        if rank == 1:
            return 1, vt[0]
        if rank == 2:
            return 2, vt[2]
        return 3, None

    def alias_free_hz(self, c: float = SPEED_OF_SOUND) -> float:
        """Frequency above which the array's spacing aliases spatially: c / (2 d).

        d is the largest nearest-neighbour spacing: every microphone needs a neighbour closer than
        half a wavelength for the steered response to be free of grating lobes.
        """
        dist = np.linalg.norm(self.positions[:, None] - self.positions[None], axis=-1)
        np.fill_diagonal(dist, np.inf)
        return c / (2.0 * float(dist.min(axis=1).max()))


@dataclass
class DOAEstimate:
    """One window's direction of arrival.

    direction: unit vector (3,) in the array frame towards the source, with the array's
        ambiguities resolved towards the view (see module doc).
    confidence: in [0, 1], the SRP-PHAT peak's contrast over the directions the array resolves,
        (peak - mean) / (1 - mean): ~1 for one coherent source, ~0.1 for diffuse noise.
    resolved: "full", "azimuth" or "cone" (what the array geometry resolves).
    axis: the linear array's axis (cone) or the planar array's normal, array frame; None if volumetric.
    azimuth_deg / elevation_deg: relative to the view; elevation None unless resolved == "full".
    support: share of the window's energy (blocks of ~0.1 s) that points at this direction; well
        below 1 when another source is active too.
    """

    direction: np.ndarray
    confidence: float
    resolved: str
    axis: np.ndarray | None
    azimuth_deg: float
    elevation_deg: float | None
    support: float = 1.0
    timings_ms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "azimuth_deg": round(self.azimuth_deg, 2),
            "elevation_deg": None if self.elevation_deg is None else round(self.elevation_deg, 2),
            "confidence": round(self.confidence, 4),
            "support": round(self.support, 3),
            "resolved": self.resolved,
            "direction": [round(float(v), 5) for v in self.direction],
        }


def fibonacci_sphere(n: int) -> np.ndarray:
    """n nearly uniform unit vectors (n, 3)."""
    k = np.arange(n) + 0.5
    z = 1.0 - 2.0 * k / n
    r = np.sqrt(1.0 - z * z)
    phi = k * math.pi * (3.0 - math.sqrt(5.0))
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def view_angles(direction: np.ndarray, forward: np.ndarray, up: np.ndarray) -> tuple[float, float]:
    """(azimuth, elevation) in degrees of unit vector(s) relative to a view; azimuth positive to the right."""
    right = np.cross(forward, up)
    d = np.asarray(direction)
    az = np.degrees(np.arctan2(d @ right, d @ forward))
    el = np.degrees(np.arcsin(np.clip(d @ up, -1.0, 1.0)))
    return az, el


class SRPPhat:
    """SRP-PHAT over a sphere of far-field directions, refined locally around the peak.

    Per pair (i, j) the PHAT-weighted cross-power spectrum, accumulated over blocks of
    ``block_frames`` STFT frames (so loud frames dominate), is turned into a cross-correlation
    over the physically possible delays on a grid ``interp`` times finer than a sample; the
    steered response of a direction is the mean over pairs of that correlation at the
    direction's delays. Blocks vote for their own peaks; the majority's blocks are pooled.
    """

    def __init__(self, array: MicArray, sample_rate: int, *, nfft: int = 512,
                 band_hz: tuple[float, float | None] = (300.0, None), c: float = SPEED_OF_SOUND,
                 grid_points: int = 2562, interp: int = 8, block_frames: int = 8, vote_radius_deg: float = 12.0):
        self.array, self.fs, self.nfft, self.c = array, int(sample_rate), int(nfft), float(c)
        self.block, self.vote_radius_deg = int(block_frames), float(vote_radius_deg)
        # Above c / (2 d) the steered response grows grating lobes: bench_doa measured p90 errors
        # of 20-30 degrees with a 7.6 kHz band on the ReSpeaker arrays, 4-10 degrees when clipped.
        alias = array.alias_free_hz(self.c)
        lo, hi = float(band_hz[0]), min(0.95 * 0.5 * self.fs, alias)
        if band_hz[1] is not None:
            if float(band_hz[1]) > hi:
                log.warning("doa band %.0f-%.0f Hz reaches above what array %r resolves at %d Hz sampling "
                            "(its spacing aliases above %.0f Hz): using %.0f-%.0f Hz",
                            lo, float(band_hz[1]), array.name, self.fs, alias, lo, hi)
            hi = min(hi, float(band_hz[1]))
        if alias < 2.0 * lo:
            raise ConfigError(
                f"array {array.name!r}: microphone spacing aliases above {alias:.0f} Hz, leaving no usable band "
                f"above {lo:.0f} Hz; place neighbouring microphones closer than {self.c / (4 * lo) * 100:.1f} cm")
        if hi <= lo:
            raise ConfigError(f"doa band {lo:.0f}-{hi:.0f} Hz is empty at {self.fs} Hz sampling")
        self.band_hz = (lo, hi)
        freqs = np.fft.rfftfreq(self.nfft, 1.0 / self.fs)
        self._bins = np.flatnonzero((freqs >= lo) & (freqs <= hi))
        i, j = np.triu_indices(array.num_mics, 1)
        self._pairs = (i, j)
        self._baselines = array.positions[i] - array.positions[j]  # (P, 3)
        max_delay = np.linalg.norm(self._baselines, axis=1).max() / self.c
        step = 1.0 / (self.fs * interp)
        n_lags = int(math.ceil(max_delay / step)) + 2
        self._lag0, self._lag_step = -n_lags * step, step
        lags = self._lag0 + step * np.arange(2 * n_lags + 1)
        # Re(G e^{-j 2 pi f tau}) = Re(G) cos + Im(G) sin: two real matrix products per window.
        phase = 2.0 * math.pi * freqs[self._bins][:, None] * lags[None, :]
        self._cos, self._sin = np.cos(phase).astype(np.float32), np.sin(phase).astype(np.float32)
        self._grid = fibonacci_sphere(grid_points)
        self._window = np.hanning(self.nfft).astype(np.float32)

    # -- spectra -----------------------------------------------------------------------------
    def _stft(self, x: np.ndarray) -> np.ndarray:
        hop = self.nfft // 2
        n = x.shape[0]
        if n < self.nfft:
            x = np.pad(x, ((0, self.nfft - n), (0, 0)))
            n = self.nfft
        starts = np.arange(0, n - self.nfft + 1, hop)
        frames = np.stack([x[s:s + self.nfft] for s in starts]) * self._window[None, :, None]
        return np.fft.rfft(frames, axis=1)[:, self._bins, :]  # (T, F, M)

    def block_correlations(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per block of ``block`` STFT frames: band-limited PHAT cross-correlation per pair over the
        delay grid (B, P, L) in [-1, 1], and the block's cross-power (B,)."""
        spec = self._stft(x)
        i, j = self._pairs
        cross = spec[:, :, i] * np.conj(spec[:, :, j])  # (T, F, P)
        blocks = np.add.reduceat(cross, np.arange(0, cross.shape[0], self.block), axis=0)
        mag = np.abs(blocks)
        phat = blocks / np.maximum(mag, 1e-20)
        corr = (np.einsum("bfp,fl->bpl", phat.real.astype(np.float32), self._cos)
                + np.einsum("bfp,fl->bpl", phat.imag.astype(np.float32), self._sin)) / len(self._bins)
        return corr, mag.sum(axis=(1, 2))

    def response(self, corr: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """Steered response of unit vectors (N, 3): mean over pairs of corr at their delays, (N,)."""
        # A plane wave from d reaches mic i (p_i . d) / c earlier than the origin, so the
        # cross-spectrum X_i X_j* carries the phase of tau = (p_i - p_j) . d / c.
        tau = (directions @ self._baselines.T) / self.c  # (N, P)
        pos = (tau - self._lag0) / self._lag_step
        k = np.clip(np.floor(pos).astype(np.int64), 0, corr.shape[1] - 2)
        frac = (pos - k).astype(np.float32)
        rows = np.arange(corr.shape[0])[None, :]
        vals = corr[rows, k] * (1 - frac) + corr[rows, k + 1] * frac
        return vals.mean(axis=1)

    def _refine(self, corr: np.ndarray, d: np.ndarray, span_deg: float = 6.0, step_deg: float = 0.5) -> np.ndarray:
        # Tangent-plane patch around the coarse peak (the coarse grid is ~4 degrees apart).
        a = np.cross(d, [0.0, 0.0, 1.0] if abs(d[2]) < 0.9 else [1.0, 0.0, 0.0])
        a /= np.linalg.norm(a)
        b = np.cross(d, a)
        offs = np.tan(np.radians(np.arange(-span_deg, span_deg + 1e-9, step_deg)))
        u, v = np.meshgrid(offs, offs)
        cand = d[None] + u.reshape(-1, 1) * a[None] + v.reshape(-1, 1) * b[None]
        cand /= np.linalg.norm(cand, axis=1, keepdims=True)
        return cand[int(np.argmax(self.response(corr, cand)))]

    # -- estimate ----------------------------------------------------------------------------
    def check_audio(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """(n, M) float32 from a (n, M) or (M, n) buffer; InputError on channel/rate mismatch."""
        x = np.asarray(audio)
        if x.ndim != 2:
            raise InputError(f"DOA needs multi-channel audio (n, {self.array.num_mics}), got shape {x.shape}")
        if x.shape[0] < x.shape[1]:
            x = x.T  # (channels, n) layout: a window always has more samples than channels
        if x.shape[1] != self.array.num_mics:
            raise InputError(f"audio has {x.shape[1]} channels but mic array {self.array.name!r} has "
                             f"{self.array.num_mics} microphones (mic.positions)")
        if int(sample_rate) != self.fs:
            raise InputError(f"DOA estimator built for {self.fs} Hz, audio is {sample_rate} Hz")
        if x.dtype.kind not in "fiu":
            raise InputError(f"audio samples must be numeric PCM, got dtype {x.dtype}")
        # PHAT whitening discards scale, so PCM needs no full-scale conversion; removing the
        # mean drops unsigned PCM's offset and any DC, which would otherwise look like broadside.
        x = x.astype(np.float32)
        if not np.all(np.isfinite(x)):
            raise InputError("multi-channel audio contains NaN/inf samples")
        return x - x.mean(axis=0, keepdims=True)

    def estimate(self, audio: np.ndarray, sample_rate: int, forward: np.ndarray = np.array([1.0, 0.0, 0.0]),
                 up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> DOAEstimate:
        """DOA of the dominant source in one window; ``forward``/``up`` (array frame) define the view."""
        t0 = time.perf_counter()
        x = self.check_audio(audio, sample_rate)
        corr_b, power = self.block_correlations(x)
        peaks, weights = [], []
        for corr in corr_b:
            r = self.response(corr, self._grid)
            k = int(np.argmax(r))
            peaks.append(resolve_ambiguity(self.array, self._grid[k], forward, up)[0])
            weights.append(max(float(r[k] - r.mean()), 0.0))
        w = np.asarray(weights) * power
        w = w if w.sum() > 0 else np.ones(len(w))
        # Each block votes for its own peak and only the blocks agreeing with the best-supported
        # direction are pooled: pooling every block sums two sources' wide lobes into a peak
        # between them (bench_doa: p90 error 29 -> 15 degrees with an interfering source).
        peaks = np.asarray(peaks)
        near = peaks @ peaks.T > math.cos(math.radians(self.vote_radius_deg))
        sel = near[int(np.argmax(near.astype(np.float64) @ w))]
        corr = np.tensordot(w[sel], corr_b[sel], axes=1) / w[sel].sum()
        srp = self.response(corr, self._grid)
        d = self._refine(corr, self._grid[int(np.argmax(srp))])
        d, resolved, axis = resolve_ambiguity(self.array, d, forward, up)
        # Contrast of the peak over the directions the array tells apart: diffuse noise is coherent
        # at low frequencies and gives small arrays a high raw peak (broadside/zenith), but a flat
        # response over those directions (bench_doa: ~0.1 for diffuse noise, 0.35-0.95 for a source).
        rest = self.response(corr, representatives(resolved, axis, forward, up, self._grid))
        peak, floor = float(self.response(corr, d[None])[0]), float(rest.mean())
        confidence = float(np.clip((peak - floor) / max(1.0 - floor, 1e-6), 0.0, 1.0))
        az, el = view_angles(d, forward, up)
        return DOAEstimate(d, confidence, resolved, axis, float(az), float(el) if resolved == "full" else None,
                           float(w[sel].sum() / w.sum()), {"doa": (time.perf_counter() - t0) * 1e3})


def representatives(resolved: str, axis: np.ndarray | None, forward: np.ndarray, up: np.ndarray,
                    sphere: np.ndarray, step_deg: float = 2.0) -> np.ndarray:
    """One direction per distinguishable DOA: the sphere (full), the horizon (azimuth), or the
    half circle from the linear array's axis through forward to its opposite (cone)."""
    if resolved == "full":
        return sphere
    if resolved == "azimuth":
        a = np.radians(np.arange(-180.0, 180.0, step_deg))
        return np.cos(a)[:, None] * forward[None] + np.sin(a)[:, None] * np.cross(forward, up)[None]
    perp = forward - (forward @ axis) * axis
    if np.linalg.norm(perp) < 1e-9:
        perp = up - (up @ axis) * axis
    perp = perp / np.linalg.norm(perp)
    t = np.radians(np.arange(0.0, 180.0 + 1e-9, step_deg))
    return np.cos(t)[:, None] * axis[None] + np.sin(t)[:, None] * perp[None]


def resolve_ambiguity(array: MicArray, d: np.ndarray, forward: np.ndarray, up: np.ndarray
                      ) -> tuple[np.ndarray, str, np.ndarray | None]:
    """The representative of d's ambiguity set the view expects, and what the array resolves."""
    forward, up = np.asarray(forward, float), np.asarray(up, float)
    rank, axis = array.shape()
    if rank == 3:
        return d, "full", None
    if rank == 2:
        n = axis
        if abs(n @ forward) >= abs(n @ up):
            # Mirror ambiguity is front/back: the source is taken to be in front.
            if (d @ n) * (forward @ n) < 0:
                d = d - 2.0 * (d @ n) * n
            return d, "full", n
        # Mirror ambiguity is above/below: keep the horizontal direction only.
        h = d - (d @ up) * up
        norm = np.linalg.norm(h)
        return (h / norm if norm > 1e-9 else forward.copy()), "azimuth", n
    # Linear: only the angle to the axis; pick the direction on that cone closest to forward.
    cos_t = float(np.clip(d @ axis, -1.0, 1.0))
    perp = forward - (forward @ axis) * axis
    if np.linalg.norm(perp) < 1e-9:
        perp = up - (up @ axis) * axis
    perp /= np.linalg.norm(perp)
    return cos_t * axis + math.sqrt(max(0.0, 1.0 - cos_t * cos_t)) * perp, "cone", axis


def build_estimator(cfg: Mapping[str, Any], array: MicArray, sample_rate: int) -> SRPPhat:
    """The estimator ``pipeline.doa`` configures (see config/pipeline.yaml)."""
    method = cfg.get("method", "srp_phat")
    if method != "srp_phat":
        raise ConfigError(f"doa.method must be srp_phat, got {method!r}")
    band = cfg.get("band_hz", [300.0, 0.0])
    if not (isinstance(band, (list, tuple)) and len(band) == 2 and all(isinstance(v, (int, float)) for v in band)
            and band[0] > 0 and (band[1] == 0 or band[1] > band[0])):
        raise ConfigError(f"doa.band_hz must be [low, high] Hz with 0 < low < high (high 0: the array's "
                          f"alias-free limit), got {band!r}")
    return SRPPhat(array, sample_rate, nfft=int(cfg.get("nfft", 512)),
                   band_hz=(float(band[0]), float(band[1]) or None),
                   c=float(cfg.get("speed_of_sound", SPEED_OF_SOUND)))
