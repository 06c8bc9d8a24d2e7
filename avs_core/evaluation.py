"""Dataset evaluation with audio control (TeSO Table 4) on top of :mod:`avs_core.metrics`.

For every frame sample the predictor is run with the frame's own audio
("normal") and, with the picture unchanged, with substituted audio:

* ``mute``: an all-zero waveform;
* ``noiseXX``: noise-only audio, white Gaussian noise whose power is XX dB below
  the power of the frame's original second of audio (seeded per frame, so
  reproducible). A frame whose original audio is digital silence gets silence.

Each condition is scored against the original ground truth, so a model that
follows the audio loses mIoU/F and predicted area under control: Δm / Δf are
the relative drops of mIoU / F from normal audio, ``area_drop`` the relative
drop of the predicted area. Also reported: the silent-scene score (fraction of
pixels predicted in ground-truth-empty frames), the visible-but-silent rate
(fraction of pixels of on-screen but silent objects predicted as sounding, when
the data set knows them, e.g. the synthetic one) and a per-sounding-class
breakdown when frames carry semantic labels (each class scored against its own
pixels, see :func:`class_pair`).
"""
from __future__ import annotations

import hashlib
import json
import math
from typing import Callable, Iterable

import numpy as np

from .errors import InputError
from .metrics import PROTOCOLS, BinaryMetrics, relative_drop

# predict(frame_rgb HxWx3 uint8, audio (n,) float32, sample_rate, cues) -> HxW float32 probabilities.
PredictFn = Callable[[np.ndarray, np.ndarray, int, list], np.ndarray]

CONDITIONS = ("normal", "mute", "noise10", "noise40")


def _noise_snr_db(condition: str) -> float:
    try:
        return float(condition[len("noise"):])
    except ValueError:
        raise InputError(f"unknown audio condition {condition!r}; use normal, mute or noise<dB>") from None


def control_audio(audio: np.ndarray, condition: str, seed_key: str) -> np.ndarray:
    """The audio a frame is evaluated with under ``condition`` (see module docstring)."""
    audio = np.asarray(audio, np.float32)
    if condition == "normal":
        return audio
    if condition == "mute":
        return np.zeros_like(audio)
    if not condition.startswith("noise"):
        raise InputError(f"unknown audio condition {condition!r}; use normal, mute or noise<dB>")
    snr_db = _noise_snr_db(condition)
    power = float(np.mean(np.square(audio, dtype=np.float64))) if audio.size else 0.0
    seed = int.from_bytes(hashlib.sha256(f"{seed_key}|{condition}".encode()).digest()[:8], "little")
    std = math.sqrt(power / 10 ** (snr_db / 10))
    return (np.random.default_rng(seed).standard_normal(audio.shape) * std).astype(np.float32)


def class_pair(prob: np.ndarray, labels: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Prediction and ground truth that score sounding class ``c`` of a frame on its own.

    The ground truth is the pixels of ``c``; pixels of the frame's other sounding classes are
    left out of both, so they count neither for nor against ``c``. The metrics depend only on
    pixel counts, so the kept pixels are returned as one 1xN row.
    """
    keep = (labels == 0) | (labels == c)
    return prob[keep][None].astype(np.float32), (labels[keep] == c)[None].astype(np.uint8)


class _ConditionStats:
    def __init__(self) -> None:
        self.metrics = BinaryMetrics()
        self.trap_pixels = 0.0
        self.trap_total = 0.0
        self.per_class: dict[str, BinaryMetrics] = {}

    def add(self, sample: dict, prob: np.ndarray, class_names: list[str] | None) -> None:
        self.metrics.add(sample["video_id"], prob, sample["mask"])
        trap = sample.get("silent_visible")
        if trap is not None and trap.any():
            self.trap_pixels += float((prob[trap] > 0.5).sum())
            self.trap_total += float(trap.sum())
        labels = sample.get("labels")
        if labels is not None and class_names is not None:
            for c in np.unique(labels):
                if c > 0:
                    self.per_class.setdefault(class_names[c], BinaryMetrics()).add(
                        sample["video_id"], *class_pair(prob, labels, c))

    def result(self, protocol: str) -> dict:
        r = self.metrics.result(protocol)
        r["visible_silent_rate"] = self.trap_pixels / self.trap_total if self.trap_total else float("nan")
        if self.per_class:
            r["per_class"] = {k: {m: v.result(protocol)[m] for m in ("miou", "fscore", "frames")}
                              for k, v in sorted(self.per_class.items())}
        return r


def evaluate(predict: PredictFn, samples: Iterable[dict], conditions: Iterable[str] = CONDITIONS,
             protocol: str = "video", class_names: list[str] | None = None,
             progress: Callable[[Iterable], Iterable] | None = None) -> dict:
    """Score ``predict`` on frame samples under every audio condition; returns a JSON-able dict."""
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown metric protocol {protocol!r}; use one of {PROTOCOLS}")
    conditions = list(conditions)
    if "normal" not in conditions:
        conditions.insert(0, "normal")
    stats = {c: _ConditionStats() for c in conditions}
    it = progress(samples) if progress else samples
    for s in it:
        for cond in conditions:
            audio = control_audio(s["audio"], cond, f"{s['video_id']}|{s['frame']}")
            prob = np.asarray(predict(s["image"], audio, s["sample_rate"], list(s.get("cues") or [])), np.float32)
            if prob.shape != s["mask"].shape:
                raise InputError(f"predictor returned {prob.shape} for a frame of {s['mask'].shape}")
            stats[cond].add(s, prob, class_names)
    out = {"protocol": protocol, "conditions": {}}
    normal = stats["normal"].result(protocol)
    for cond in conditions:
        r = normal if cond == "normal" else stats[cond].result(protocol)
        if cond != "normal":
            r["delta_m"] = relative_drop(normal["miou"], r["miou"])
            r["delta_f"] = relative_drop(normal["fscore"], r["fscore"])
            r["area_drop"] = relative_drop(normal["area"], r["area"])
        out["conditions"][cond] = r
    return out


def evaluate_model(model, cfg: dict, splits: Iterable[str], conditions: Iterable[str] | None = None,
                   protocol: str | None = None, show_progress: bool = True) -> dict[str, dict]:
    """Evaluate a model on the named splits of ``cfg['data']`` through :class:`ModelPredictor`.

    ``eval.conditions`` / ``eval.protocol`` in ``cfg`` give the defaults; results are keyed by split.
    """
    import torch

    from .modeling import ModelPredictor

    model.eval()
    predictor = ModelPredictor(model, device=next(model.parameters()).device)
    with torch.no_grad():
        return evaluate_predictor(predictor.predict, cfg, splits, conditions, protocol, show_progress)


def evaluate_predictor(predict: PredictFn, cfg: dict, splits: Iterable[str], conditions: Iterable[str] | None = None,
                       protocol: str | None = None, show_progress: bool = True,
                       audio_before_s: float = 0.0) -> dict[str, dict]:
    """Score any ``predict`` (a learned model's, the zero-shot pipeline's) on the named splits of ``cfg['data']``;
    ``audio_before_s``: audio before each frame's second that ``predict`` gets too (its listening context)."""
    from tqdm import tqdm

    from .data.factory import build_dataset

    ev = dict(cfg.get("eval") or {})
    conditions = list(conditions or ev.get("conditions") or CONDITIONS)
    protocol = protocol or ev.get("protocol", "video")
    results = {}
    for split in splits:
        ds = build_dataset(cfg["data"], split, seed=int(cfg.get("seed", 0)))
        ds.audio_before_s = audio_before_s
        samples = (ds[i] for i in range(len(ds)))
        bar = (lambda it, n=len(ds), s=split: tqdm(it, total=n, desc=f"eval {s}")) if show_progress else None
        results[split] = evaluate(predict, samples, conditions, protocol,
                                  class_names=getattr(ds, "class_names", None), progress=bar)
    return results


def format_table(results: dict[str, dict]) -> str:
    """One row per (name, condition): mIoU, F, area, Δm, Δf, area drop, silent-scene, visible-silent."""
    head = f"{'set':<24} {'audio':<8} {'mIoU':>6} {'F':>6} {'area':>6} {'Δm':>7} {'Δf':>7} {'Δarea':>7} {'silent':>7} {'vis-sil':>7}"
    lines = [head, "-" * len(head)]

    def f(v, pct=False):
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return "-"
        return f"{v * 100:.1f}%" if pct else f"{v:.3f}"

    for name, res in results.items():
        for cond, r in res["conditions"].items():
            lines.append(
                f"{name:<24} {cond:<8} {f(r['miou']):>6} {f(r['fscore']):>6} {f(r['area']):>6} "
                f"{f(r.get('delta_m'), True):>7} {f(r.get('delta_f'), True):>7} {f(r.get('area_drop'), True):>7} "
                f"{f(r['silent_score']):>7} {f(r['visible_silent_rate']):>7}"
            )
    return "\n".join(lines)


def dump_json(results: dict, path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=1, sort_keys=True, default=float)
