"""AVSPipeline: the one inference API (window in, mask + heatmap at frame resolution out).

Everything that segments sounding objects goes through here: the CLI, the ROS
node, the demo. The pipeline validates and normalises the window, applies the
silence gate, delegates to a segmenter (the zero-shot default or a learned
paper model) and thresholds the heatmap into the mask.
"""
from __future__ import annotations

import time
from typing import Any, Mapping, Protocol

import numpy as np

from . import assets
from .audio.frontend import AudioFrontend, duration_s, level_dbfs
from .config import CONFIG_DIR, load_yaml, merge
from .device import resolve_device
from .doa_fusion import DirectionStage
from .errors import ConfigError, InputError
from .image import to_rgb8
from .resolution import check_frame_size, downscale, inference_size, upscale_output
from .types import AVSResult, SegmenterOutput, Window

DEFAULTS_PATH = CONFIG_DIR / "pipeline.yaml"


class Segmenter(Protocol):
    """What a model must provide to run inside the pipeline."""

    def segment(self, rgb: np.ndarray, audio: np.ndarray, sample_rate: int,
                cues: list[str] | None) -> SegmenterOutput: ...

    def audio_tags(self, audio: np.ndarray, sample_rate: int, k: int) -> list[tuple[str, float]]: ...


def pipeline_config(cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The defaults from config/pipeline.yaml with ``cfg`` merged over them, validated."""
    out = merge(load_yaml(DEFAULTS_PATH), cfg or {})
    for key, lo, hi in (("window_s", 0.1, 10.0), ("tagger_context_s", 0.0, 10.0), ("audio_threshold", 0.0, 1.0),
                        ("mask_threshold", 0.0, 1.0)):
        value = out.get(key)
        if not isinstance(value, (int, float)) or not lo <= float(value) <= hi:
            raise ConfigError(f"pipeline.{key} must be a number in [{lo}, {hi}], got {value!r}")
    if out.get("silence_dbfs") is not None and not isinstance(out["silence_dbfs"], (int, float)):
        raise ConfigError(f"pipeline.silence_dbfs must be a number or null, got {out['silence_dbfs']!r}")
    for key, lo in (("max_side", 32), ("max_pixels", 1), ("torch_threads", 0)):
        value = out.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ConfigError(f"pipeline.{key} must be an integer >= {lo}, got {value!r}")
    if out.get("precision") not in PRECISIONS:
        raise ConfigError(f"pipeline.precision must be one of {', '.join(PRECISIONS)}, got {out.get('precision')!r}")
    return out


def audio_span_s(cfg: Mapping[str, Any]) -> float:
    """Seconds of audio a window should carry, ending at its frame: the window, or the zero-shot tagger's
    longer context (``tagger_context_s``). Producers of windows (``iter_windows``, the stream processor)
    use it; shorter audio is accepted (the start of a recording or stream)."""
    context = float(cfg["tagger_context_s"]) if cfg["model"] == "zero_shot" else 0.0
    return max(float(cfg["window_s"]), context)


# pipeline.precision -> torch.autocast dtype on CUDA (None: full fp32); CPU runs always fp32.
PRECISIONS = {"fp32": None, "fp16": "float16", "bf16": "bfloat16"}


def inference_context(device: str, precision: str):
    """torch.inference_mode, plus autocast to ``precision`` on CUDA (autocast keeps fp32 where an op needs it)."""
    import contextlib

    import torch

    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    dtype = PRECISIONS[precision]
    if dtype is not None and str(device).startswith("cuda"):
        stack.enter_context(torch.autocast("cuda", dtype=getattr(torch, dtype)))
    return stack


class AVSPipeline:
    def __init__(self, segmenter: Segmenter, cfg: Mapping[str, Any], device: str = "cpu"):
        self.segmenter = segmenter
        self.cfg = dict(cfg)
        self.device = device
        # Microphone-array direction fusion (pipeline.doa); None when no array is configured.
        self.direction = DirectionStage.from_config(self.cfg.get("doa"))

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None = None) -> "AVSPipeline":
        import torch

        cfg = pipeline_config(cfg)
        assets.configure_from(cfg)  # assets.auto_fetch / assets.mirror: before any model resolves its files
        torch.set_num_threads(int(cfg["torch_threads"] or cfg["num_threads"]))
        device = str(resolve_device(cfg["device"]))
        if cfg["model"] == "zero_shot":
            from .zero_shot import ZeroShotSegmenter

            segmenter: Segmenter = ZeroShotSegmenter.from_config(cfg, device)
        else:
            from .learned import LearnedSegmenter

            segmenter = LearnedSegmenter.from_config(cfg, device)
        return cls(segmenter, cfg, device)

    # Thresholds may change at run time (ROS parameter callbacks).
    def update(self, **values: Any) -> None:
        self.cfg = pipeline_config(merge(self.cfg, values))
        self.direction = DirectionStage.from_config(self.cfg.get("doa"))
        if hasattr(self.segmenter, "update"):
            self.segmenter.update(self.cfg)

    def warmup(self) -> None:
        if hasattr(self.segmenter, "warmup"):
            # The zero-shot model runs vision only when a visible source is heard: noise would skip it.
            self.segmenter.warmup()
            return
        rng = np.random.default_rng(0)
        frame = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
        audio = rng.normal(0, 0.1, 16000).astype(np.float32)
        self.segmenter.segment(frame, audio, 16000, None)

    @property
    def audio_span_s(self) -> float:
        return audio_span_s(self.cfg)

    def audio_tags(self, samples: np.ndarray, sample_rate: int, k: int = 5) -> list[tuple[str, float]]:
        return self.segmenter.audio_tags(self._heard_audio(samples, sample_rate), sample_rate, k)

    def _heard_audio(self, samples: Any, sample_rate: int) -> np.ndarray:
        """What the segmenter listens to, mono at the input rate (segmenters resample to their own): the last
        ``audio_span_s`` seconds of what was given, at least the window (a shorter buffer is zero-padded to
        it, never beyond: zeros would dilute the tagger's time-pooled evidence)."""
        window_s = float(self.cfg["window_s"])
        span = min(self.audio_span_s, max(window_s, duration_s(samples, sample_rate)))
        return AudioFrontend(sample_rate, span).window(samples, sample_rate).numpy()

    def __call__(self, window: Window) -> AVSResult:
        t0 = time.perf_counter()
        if not isinstance(window, Window):
            raise InputError(f"expected an avs_core.types.Window, got {type(window).__name__}")
        check_frame_size(window.frame, int(self.cfg["max_pixels"]))
        rgb = to_rgb8(window.frame)
        heard = self._heard_audio(window.audio, window.sample_rate)
        audio = heard[-int(round(float(self.cfg["window_s"]) * window.sample_rate)):]  # the window: its tail
        h, w = rgb.shape[:2]
        # Models infer at most at max_side; their outputs are brought back to (h, w) below.
        small = inference_size(h, w, int(self.cfg["max_side"]))
        level = level_dbfs(audio)
        timings = {"prepare": (time.perf_counter() - t0) * 1e3}
        info: dict[str, Any] = {"level_dbfs": level, "t_start": window.t_start, "t_end": window.t_end}
        gate = self.cfg.get("silence_dbfs")
        if gate is not None and level < float(gate):
            timings["total"] = (time.perf_counter() - t0) * 1e3
            return AVSResult(np.zeros((h, w), bool), np.zeros((h, w), np.float32), [], timings, True, info)
        with inference_context(self.device, self.cfg["precision"]):
            out = self.segmenter.segment(downscale(rgb, small), heard, window.sample_rate, window.cues)
        timings.update(out.timings_ms)
        info.update(out.info)
        heatmap = out.heatmap
        if heatmap.shape != small or not np.all(np.isfinite(heatmap)):
            # A model bug must never reach subscribers as a wrong-sized or NaN mask.
            raise RuntimeError(f"segmenter returned heatmap {heatmap.shape} (finite={np.isfinite(heatmap).all()}) "
                               f"for frame {small[0]}x{small[1]}")
        # Clipped at inference size (cheaper on huge frames): bilinear upscaling stays within [0, 1].
        out.heatmap = np.clip(heatmap, 0.0, 1.0).astype(np.float32, copy=False)
        out = upscale_output(out, (h, w))
        heatmap = out.heatmap
        doa = None
        if self.direction is not None:
            # From the raw channels: _heard_audio above mixed them to mono for the segmenter.
            doa = self.direction.locate(window.audio, window.sample_rate, float(self.cfg["window_s"]),
                                        window.camera, window.array_pose, (h, w))
            doa, heatmap = self.direction.fuse(doa, heatmap, list(out.instances))
            info["doa"] = doa.as_dict()
            if doa.estimate is not None:
                timings.update(doa.estimate.timings_ms)
        # One rule for every model; "> 0" keeps mask_threshold 0 from masking the whole frame.
        mask = (heatmap >= float(self.cfg["mask_threshold"])) & (heatmap > 0)
        if doa is not None and doa.keep is not None:
            mask &= doa.keep
        timings["total"] = (time.perf_counter() - t0) * 1e3
        return AVSResult(mask, heatmap, out.labels, timings, False, info,
                         list(out.heard_not_visible), list(out.instances), doa)
