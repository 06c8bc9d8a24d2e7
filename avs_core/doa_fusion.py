"""Which candidate is sounding: the microphone array's direction fused with the segmenter's instances.

The segmenter proposes every visible instance of the heard class; the direction of arrival
says where the sound comes from. Each instance is weighted by its angular agreement with the
direction (a Gaussian in the angle between the direction and the instance's nearest pixel), and
only the instance(s) that agree are kept in the mask:

- keep k  iff  offset_k <= max_offset_deg  and  agreement_k >= keep_ratio * best agreement;
- heatmap = max over instances of prob_k * agreement_k / best agreement (models without
  instances: heatmap * pixel likelihood);
- a direction more than ``fov_margin_deg`` outside the image: empty mask (the source is not in view);
- mono audio, no camera model or confidence below ``min_confidence``: the segmenter's output
  unchanged (today's behaviour), with the reason in ``DirectionResult.reason``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .audio.doa import DOAEstimate, MicArray, SRPPhat, build_estimator
from .errors import AVSError, ConfigError, InputError
from .geometry import ArrayPose, CameraModel, likelihood, offset_map
from .types import Instance

log = logging.getLogger(__name__)


@dataclass
class DirectionResult:
    """What the direction stage found for one window (``AVSResult.doa``).

    used: True when the direction re-weighted the segmentation.
    reason: why it was not used (or "" when used).
    estimate: the DOA (None when none could be computed).
    likelihood: HxW float32 direction likelihood over the image (None without estimate + camera).
    offset_deg: HxW float32 angle between each pixel's ray and the direction (what the array resolves).
    in_view: the direction falls inside the image (with the margin).
    pixel: (u, v) where the direction projects (v None for azimuth-only arrays), or None.
    instances: per candidate {label, offset_deg, agreement, kept, box}.
    chosen: indices of the kept instances in ``AVSResult.instances``.
    keep: HxW bool, the pixels the mask may keep (None: no restriction).
    """

    used: bool = False
    reason: str = ""
    estimate: DOAEstimate | None = None
    likelihood: np.ndarray | None = None
    offset_deg: np.ndarray | None = None
    in_view: bool | None = None
    pixel: tuple[float, float | None] | None = None
    instances: list[dict[str, Any]] = field(default_factory=list)
    chosen: list[int] = field(default_factory=list)
    keep: np.ndarray | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no arrays)."""
        out: dict[str, Any] = {"used": self.used, "reason": self.reason}
        if self.estimate is not None:
            out.update(self.estimate.as_dict())
            out["in_view"] = self.in_view
            out["pixel"] = None if self.pixel is None else [None if v is None else round(v, 1) for v in self.pixel]
            out["instances"] = self.instances
            out["chosen"] = self.chosen
        return out


def _box_mask(inst: Instance, shape: tuple[int, int]) -> np.ndarray:
    if inst.mask is not None and inst.mask.any():
        return inst.mask
    m = np.zeros(shape, bool)
    if inst.box is not None:
        x0, y0, x1, y1 = (int(round(v)) for v in inst.box)
        m[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
    return m


class DirectionStage:
    """Estimates the direction per window and re-weights the segmentation (pipeline.doa config)."""

    def __init__(self, array: MicArray, pose: ArrayPose, cfg: Mapping[str, Any]):
        self.array, self.pose, self.cfg = array, pose, dict(cfg)
        self._estimators: dict[int, SRPPhat] = {}
        self._warned: set[str] = set()

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> "DirectionStage | None":
        """None when no mic array is configured (``doa.mic_array: null``)."""
        cfg = dict(cfg or {})
        if cfg.get("mic_array") in (None, ""):  # ROS parameters hold an unset value as ''
            return None
        for key, lo, hi in (("min_confidence", 0.0, 1.0), ("sigma_deg", 0.5, 90.0), ("max_offset_deg", 0.0, 180.0),
                            ("keep_ratio", 0.0, 1.0), ("fov_margin_deg", 0.0, 90.0), ("source_distance_m", 0.1, 100.0)):
            value = cfg.get(key)
            if not isinstance(value, (int, float)) or not lo <= float(value) <= hi:
                raise ConfigError(f"pipeline.doa.{key} must be a number in [{lo}, {hi}], got {value!r}")
        return cls(MicArray.from_config(cfg["mic_array"]), ArrayPose.from_config(cfg.get("array_to_camera")), cfg)

    def estimator(self, sample_rate: int) -> SRPPhat:
        if sample_rate not in self._estimators:
            self._estimators[sample_rate] = build_estimator(self.cfg, self.array, sample_rate)
        return self._estimators[sample_rate]

    def _skip(self, reason: str, warn: bool = False, **kw) -> DirectionResult:
        if warn and reason not in self._warned:  # once per distinct problem: windows come 1/s
            self._warned.add(reason)
            log.warning("direction of arrival not used: %s", reason)
        return DirectionResult(reason=reason, **kw)

    def locate(self, audio: np.ndarray, sample_rate: int, window_s: float, camera: CameraModel | None,
               pose: ArrayPose | None, frame_size: tuple[int, int]) -> DirectionResult:
        """Estimate the direction of the window's last ``window_s`` seconds and project it into the image."""
        x = np.asarray(audio)
        if x.ndim == 1 or min(x.shape) == 1:
            return self._skip("mono audio")
        pose = pose or self.pose
        try:
            est_ = self.estimator(int(sample_rate))
            channels = list(self.cfg.get("channels") or [])
            if channels:  # devices that also send processed/playback channels (ReSpeaker USB: 1-4 are the mics)
                x = x if x.shape[0] > x.shape[1] else x.T
                if max(channels) >= x.shape[1] or min(channels) < 0:
                    raise InputError(f"doa.channels {channels} do not exist in {x.shape[1]}-channel audio")
                x = x[:, channels]
            x = est_.check_audio(x, sample_rate)[-int(round(window_s * sample_rate)):]
            forward, up = pose.view()
            est = est_.estimate(x, sample_rate, forward, up)
        except AVSError as exc:
            return self._skip(str(exc), warn=True)
        if camera is None:
            return self._skip("no camera intrinsics (camera_info)", warn=True, estimate=est)
        h, w = frame_size
        try:
            cam = camera.for_image(w, h)
        except AVSError as exc:
            return self._skip(str(exc), warn=True, estimate=est)
        t = time.perf_counter()
        offsets = offset_map(est, cam, pose, float(self.cfg["source_distance_m"]))
        lik = likelihood(offsets, float(self.cfg["sigma_deg"]))
        in_view = bool(offsets.min() <= float(self.cfg["fov_margin_deg"]))
        uv = cam.project(pose.rotation @ est.direction)
        pixel = None if uv is None else (uv[0], uv[1] if est.resolved == "full" else None)
        est.timings_ms["doa_project"] = (time.perf_counter() - t) * 1e3
        res = DirectionResult(estimate=est, likelihood=lik, offset_deg=offsets, in_view=in_view, pixel=pixel)
        if est.confidence < float(self.cfg["min_confidence"]):
            res.reason = f"confidence {est.confidence:.2f} < doa.min_confidence {self.cfg['min_confidence']}"
        return res

    def fuse(self, res: DirectionResult, heatmap: np.ndarray, instances: list[Instance]
             ) -> tuple[DirectionResult, np.ndarray]:
        """Re-weight the segmentation by the direction: (result with keep/chosen filled, new heatmap)."""
        if res.estimate is None or res.likelihood is None or res.reason:
            return res, heatmap
        offsets = res.offset_deg
        sigma, shape = float(self.cfg["sigma_deg"]), heatmap.shape
        res.used = True
        if not instances:
            # A model without instances: pixel-level weighting by the direction likelihood.
            res.keep = None if res.in_view else np.zeros(shape, bool)
            return res, heatmap * res.likelihood
        regions = [_box_mask(i, shape) for i in instances]
        offs = np.array([float(offsets[r].min()) if r.any() else 180.0 for r in regions])
        agree = np.exp(-0.5 * (offs / sigma) ** 2)
        best = float(agree.max())
        kept = (offs <= float(self.cfg["max_offset_deg"])) & (agree >= float(self.cfg["keep_ratio"]) * best)
        # Out of view nothing agrees: absolute agreement fades every instance; in view the best keeps its heatmap.
        weights = agree / best if res.in_view and best > 0 else agree
        if not res.in_view:
            kept[:] = False
        new = np.zeros(shape, np.float32)
        keep = np.zeros(shape, bool)
        for k, inst in enumerate(instances):
            np.maximum(new, inst.prob * np.float32(weights[k]), out=new)
            if kept[k]:
                keep |= regions[k]
            res.instances.append({"label": inst.label, "offset_deg": round(float(offs[k]), 2),
                                  "agreement": round(float(agree[k]), 4), "kept": bool(kept[k]),
                                  "box": None if inst.box is None else [round(float(v), 1) for v in inst.box]})
        res.chosen = [int(k) for k in np.flatnonzero(kept)]
        res.keep = keep
        return res, new


def array_file_config(path_or_preset: str) -> dict[str, Any]:
    """``pipeline.doa`` settings from ``avs segment --mic-positions``: a preset name or an ARRAY.yaml.

    ARRAY.yaml holds ``preset: NAME`` or ``positions: [[x, y, z], ...]`` (metres, camera optical
    frame: x right, y down, z forward), optional ``translation: [x, y, z]`` (the array origin in
    the optical frame; default the camera origin), ``rotation`` (body | optical | quaternion; default
    optical for positions, body for a preset: the board lies flat with its x axis forward) and
    ``channels`` (audio channel of each microphone).
    """
    from pathlib import Path

    from .audio.doa import PRESETS
    from .config import load_yaml

    if path_or_preset in PRESETS and not Path(path_or_preset).exists():
        data: dict[str, Any] = {"preset": path_or_preset}
    else:
        data = load_yaml(path_or_preset)
    unknown = set(data) - {"preset", "positions", "translation", "rotation", "channels"}
    if unknown or ("preset" in data) == ("positions" in data):
        raise ConfigError(f"{path_or_preset}: needs exactly one of 'preset' or 'positions' (plus optional "
                          f"translation, rotation, channels); got keys {sorted(data)}")
    out: dict[str, Any] = {
        "mic_array": data.get("preset") or data.get("positions"),
        "array_to_camera": {"rotation": data.get("rotation", "body" if "preset" in data else "optical"),
                            "translation": data.get("translation", [0.0, 0.0, 0.0])},
    }
    if "channels" in data:
        out["channels"] = data["channels"]
    MicArray.from_config(out["mic_array"])  # fail on a bad file before any model loads
    ArrayPose.from_config(out["array_to_camera"])
    return out
