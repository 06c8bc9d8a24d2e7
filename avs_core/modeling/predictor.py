"""ModelPredictor: one frame + its audio window (+ cues) -> sounding-object probabilities at the frame's size.

SAM-style preprocessing (``SamPredictor.set_image`` + ``Sam.preprocess``): the
frame is resized so its longest side is the model's input size, normalised by
the model, then padded with zeros at the bottom/right to a square; the mask is
cropped and resized back to the original frame. The audio-independent image
work (``model.encode_image``) runs once per frame; each audio window / cue set
on that frame only runs ``model.decode``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.utils.transforms import ResizeLongestSide

from ..audio.frontend import AudioFrontend
from ..errors import InputError
from ..image import to_rgb8
from .base import AVSModel


class ModelPredictor:
    def __init__(self, model: AVSModel, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.transform = ResizeLongestSide(model.input_size)
        self.frontend = AudioFrontend(sample_rate=model.audio_sample_rate, window_s=model.audio_window_s)
        self._frame: np.ndarray | None = None
        self._features = None
        self._sizes: tuple[tuple[int, int], tuple[int, int]] | None = None

    @torch.inference_mode()
    def set_frame(self, frame_rgb: np.ndarray) -> None:
        """Run the per-frame image work (called by ``predict`` when the frame changes)."""
        frame = to_rgb8(frame_rgb)
        resized = self.transform.apply_image(frame)
        size = self.model.input_size
        x = torch.from_numpy(resized).to(self.device).permute(2, 0, 1).float().div_(255.0)
        x = F.pad(x, (0, size - x.shape[2], 0, size - x.shape[1]))[None]
        # The model normalises, then zeroes the padding (the value under it here does not matter).
        self._features = self.model.encode_image(x, valid_hw=[resized.shape[:2]])
        self._frame = frame.copy()
        self._sizes = (frame.shape[:2], resized.shape[:2])

    def _same_frame(self, frame: np.ndarray) -> bool:
        return self._frame is not None and frame.shape == self._frame.shape and np.array_equal(frame, self._frame)

    @torch.inference_mode()
    def predict(self, frame_rgb: np.ndarray, audio: np.ndarray, sample_rate: int,
                cues: Sequence[str] | None = None) -> np.ndarray:
        """HxW float32 probabilities for ``frame_rgb``'s sounding objects, given the audio ending at the frame."""
        frame = to_rgb8(frame_rgb)
        if not self._same_frame(frame):
            self.set_frame(frame)
        if self.model.requires_cues and cues is None:
            raise InputError(f"model {self.model.name} needs text cues (a list of str, may be empty)")
        if cues is not None and (isinstance(cues, str) or not all(isinstance(c, str) for c in cues)):
            raise InputError(f"cues must be a list of str, got {cues!r}")
        wave = self.frontend.window(audio, sample_rate).to(self.device)[None]
        out = self.model.decode(self._features, {"audio": wave, "cues": [list(cues or [])]})
        (h, w), (rh, rw) = self._sizes
        logits = out["mask_logits"][:, :, :rh, :rw]
        logits = F.interpolate(logits, (h, w), mode="bilinear", align_corners=False)
        return torch.sigmoid(logits)[0, 0].float().cpu().numpy()
