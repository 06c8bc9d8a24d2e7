"""Deterministic frame/mask/audio transforms and the training collate function.

Datasets yield *frame samples*: plain dicts

    image: HxWx3 uint8 RGB at the frame's own resolution
    audio: (n,) float32 mono, the second of audio paired with the frame
    sample_rate: Hz of ``audio``
    mask: HxW uint8 {0, 1} sounding-object mask at the frame's resolution
    labels: HxW int64 semantic label map (0 = background) or None
    cues: list[str] text cues for the frame (may be empty)
    video_id: str, frame: int

Models get batches at their own input size and audio rate (see :class:`Collate`);
evaluation compares predictions with ``mask`` at the frame's resolution.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from segment_anything.utils.transforms import ResizeLongestSide

from ..audio.frontend import AudioFrontend
from ..errors import InputError


def _letterbox_shape(h: int, w: int, size: int) -> tuple[int, int]:
    return ResizeLongestSide.get_preprocess_shape(h, w, size)


def image_to_tensor(image: np.ndarray, size: int) -> torch.Tensor:
    """HxWx3 uint8 -> 3 x size x size float in [0, 1].

    Same geometry as :class:`avs_core.modeling.ModelPredictor` (SAM's
    ResizeLongestSide, then zero padding at the bottom/right), so a model is
    trained on exactly what it sees at inference.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"frame must be HxWx3 uint8, got {image.shape} {image.dtype}")
    if max(image.shape[:2]) != size:
        image = ResizeLongestSide(size).apply_image(image)
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    return F.pad(t, (0, size - t.shape[2], 0, size - t.shape[1]))


def mask_to_tensor(mask: np.ndarray, size: int) -> torch.Tensor:
    """HxW {0,1} -> 1 x size x size float, letterboxed like the image (nearest neighbour keeps it binary)."""
    t = torch.from_numpy(np.ascontiguousarray(mask > 0)).float()[None]
    hw = _letterbox_shape(t.shape[1], t.shape[2], size)
    if tuple(t.shape[1:]) != hw:
        t = F.interpolate(t[None], size=hw, mode="nearest")[0]
    return F.pad(t, (0, size - t.shape[2], 0, size - t.shape[1]))


class Collate:
    """Batch frame samples for ``model.forward``: image, audio, cues, target, image_hw (+ ids).

    ``image_hw`` is each frame's letterboxed (h, w) before padding, so models zero the padding
    after normalising, as SAM's ``Sam.preprocess`` and the inference predictor do.
    """

    def __init__(self, input_size: int, audio_sample_rate: int, audio_seconds: float = 1.0):
        self.input_size = int(input_size)
        # The predictor's front-end: the last ``audio_seconds`` of the sample's audio at the model's rate.
        self.frontend = AudioFrontend(int(audio_sample_rate), audio_seconds)

    def __call__(self, samples: list[dict]) -> dict:
        return {
            "image": torch.stack([image_to_tensor(s["image"], self.input_size) for s in samples]),
            "audio": torch.stack([self.frontend.window(s["audio"], s["sample_rate"]) for s in samples]),
            "cues": [list(s.get("cues") or []) for s in samples],
            "target": torch.stack([mask_to_tensor(s["mask"], self.input_size) for s in samples]),
            "image_hw": [_letterbox_shape(*s["image"].shape[:2], self.input_size) for s in samples],
            "video_id": [s["video_id"] for s in samples],
            "frame": [s["frame"] for s in samples],
        }
