"""Audio encoders: waveform window (B, n) at 16 kHz -> one embedding per window (B, D).

* ``VGGishLogMel``: the VGGish input front-end on torchaudio (25 ms Hann window,
  10 ms hop, 64 HTK mel bands 125-7500 Hz, log(mel + 0.01), 0.96 s examples of
  96 x 64).
* ``VGGish``: the VGGish CNN (the layout of the widely used PyTorch port, keys
  ``features.*`` / ``embeddings.*``); weights are converted by the user and given
  as a path. The PCA/quantisation post-processing is not applied.
* ``LogMelCNNEncoder``: a small trainable CNN on the same log-mel input, for tiny
  configs trained from scratch.
* ``EfficientATEncoder``: the shared EfficientAT AudioSet tagger's embedding.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import torch
import torchaudio
import torchaudio.functional as TAF
from torch import nn

from ..errors import AssetError, ConfigError
from .weights import load_weights_file

VGGISH_SAMPLE_RATE = 16000
VGGISH_FRAMES = 96
VGGISH_BANDS = 64


class VGGishLogMel(nn.Module):
    """Waveform (B, n) at 16 kHz -> log-mel examples (B, E, 96, 64); E = whole 0.96 s examples (at least 1)."""

    def __init__(self):
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=VGGISH_SAMPLE_RATE, n_fft=512, win_length=400, hop_length=160,
            f_min=125.0, f_max=7500.0, n_mels=VGGISH_BANDS, power=1.0, center=False,
            mel_scale="htk", norm=None,
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        min_len = 400 + 160 * (VGGISH_FRAMES - 1)
        if wave.shape[-1] < min_len:  # shorter windows are zero-padded to one example
            wave = nn.functional.pad(wave, (0, min_len - wave.shape[-1]))
        # VGGish frames 400 samples and zero-pads each to the 512-point FFT; torch centres the
        # 400-sample window in a 512-sample frame, so shift by the 56-sample difference to
        # get VGGish's frame positions and count (magnitudes do not depend on pad placement).
        pad = (512 - 400) // 2
        logmel = torch.log(self.mel(nn.functional.pad(wave, (pad, pad))) + 0.01).transpose(1, 2)  # (B, frames, 64)
        n_ex = logmel.shape[1] // VGGISH_FRAMES
        return logmel[:, : n_ex * VGGISH_FRAMES].reshape(wave.shape[0], n_ex, VGGISH_FRAMES, VGGISH_BANDS)


class VGGish(nn.Module):
    """VGGish CNN: log-mel example (N, 1, 96, 64) -> 128-d embedding."""

    out_dim = 128

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 1
        for item in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(in_ch, item, 3, padding=1), nn.ReLU(inplace=True)]
                in_ch = item
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 4 * 6, 4096), nn.ReLU(True), nn.Linear(4096, 4096), nn.ReLU(True),
            nn.Linear(4096, 128), nn.ReLU(True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        # TF-VGGish flattens channels-last; keep its order so converted weights match.
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        return self.embeddings(x)


class LogMelCNNEncoder(nn.Module):
    """Small trainable CNN over VGGish log-mel examples (used by tiny configs)."""

    def __init__(self, out_dim: int = 64, channels: tuple[int, ...] = (8, 16, 32)):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 1
        for ch in channels:
            layers += [nn.Conv2d(in_ch, ch, 3, stride=2, padding=1), nn.BatchNorm2d(ch), nn.ReLU(inplace=True)]
            in_ch = ch
        self.net = nn.Sequential(*layers)
        self.head = nn.Linear(2 * in_ch, out_dim)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net(x)
        # Mean and max pooling: loudness (mean) and salient events (max) both matter.
        return self.head(torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1))


class LogMelAudioEncoder(nn.Module):
    """Front-end + per-example network, averaged over the window's 0.96 s examples."""

    def __init__(self, network: nn.Module, out_dim: int, trainable: bool):
        super().__init__()
        self.frontend = VGGishLogMel()
        self.network = network
        self.out_dim = out_dim
        self.trainable = trainable

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        ex = self.frontend(wave)  # (B, E, 96, 64)
        b, e = ex.shape[:2]
        emb = self.network(ex.reshape(b * e, 1, VGGISH_FRAMES, VGGISH_BANDS))
        return emb.view(b, e, -1).mean(dim=1)


class EfficientATEncoder(nn.Module):
    """Embedding of the shared EfficientAT tagger (frozen), fed at its own 32 kHz rate."""

    def __init__(self, model: nn.Module, embedding_dim: int, model_rate: int):
        super().__init__()
        self.model = model
        self.out_dim = embedding_dim
        self.model_rate = model_rate
        self.trainable = False

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        _probs, emb = self.model(TAF.resample(wave, VGGISH_SAMPLE_RATE, self.model_rate))
        return emb


def build_audio_encoder(cfg: Mapping[str, Any], key: str = "audio_encoder") -> nn.Module:
    """Build from ``cfg[key]``: type vggish (weights path), logmel_cnn, or efficientat."""
    kind = cfg.get("type")
    if kind == "vggish":
        net = VGGish()
        path = cfg.get("weights")
        if not path:
            raise ConfigError(f"config key '{key}.weights' must name the converted VGGish weights file")
        try:
            net.load_state_dict(load_weights_file(path, f"{key}.weights"))
        except RuntimeError as exc:
            raise AssetError(f"config key '{key}.weights': {path} does not hold VGGish weights: {exc}") from None
        return LogMelAudioEncoder(net, VGGish.out_dim, trainable=bool(cfg.get("trainable", False)))
    if kind == "logmel_cnn":
        out_dim = int(cfg.get("out_dim", 64))
        net = LogMelCNNEncoder(out_dim, tuple(cfg.get("channels", (8, 16, 32))))
        return LogMelAudioEncoder(net, out_dim, trainable=bool(cfg.get("trainable", True)))
    if kind == "efficientat":
        from ..audio.tagger import SAMPLE_RATE, AudioTagger

        root = cfg.get("assets_dir")
        try:
            tagger = AudioTagger.from_assets(os.fspath(root) if root else None)
        except AssetError as exc:
            raise AssetError(f"config key '{key}' (type efficientat): {exc}") from None
        return EfficientATEncoder(tagger.model, tagger.embedding_dim, SAMPLE_RATE)
    raise ConfigError(f"config key '{key}.type' must be one of vggish, logmel_cnn, efficientat; got {kind!r}")
