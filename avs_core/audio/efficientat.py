"""EfficientAT MobileNetV3 audio tagger (Schmid et al., "Efficient Large-Scale Audio
Tagging via Transformer-to-CNN Knowledge Distillation", ICASSP 2023), written for avs.

The module names follow the published checkpoints (``features.*``,
``block.*``, ``conc_se_layers.0.*``, ``classifier.*``) so their state_dicts
load with strict key matching. Only what inference needs is implemented:
channel-wise squeeze-excitation, the MLP head, and the mel front-end in its
evaluation form (no SpecAugment, no random fmin/fmax jitter).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn
from torchvision.ops import Conv2dNormActivation

from ..errors import AssetError

SAMPLE_RATE = 32000


class MelFrontEnd(nn.Module):
    """Waveform (B, n) at 32 kHz -> normalised log-mel (B, 1, n_mels, frames).

    Matches EfficientAT's AugmentMelSTFT in eval mode: pre-emphasis (0.97),
    |STFT|^2 with a symmetric Hann window of 800 samples (25 ms), hop 320
    (10 ms), n_fft 1024, Kaldi-style mel banks (fmin 0 Hz, fmax = sr/2 - 1 kHz),
    log(x + 1e-5), then (x + 4.5) / 5 as the models were trained with.
    """

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        n_mels: int = 128,
        win_length: int = 800,
        hop_length: int = 320,
        n_fft: int = 1024,
        fmin: float = 0.0,
        fmax: float | None = None,
    ):
        super().__init__()
        self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length
        fmax = sample_rate / 2 - 1000.0 if fmax is None else fmax
        banks, _ = torchaudio.compliance.kaldi.get_mel_banks(
            n_mels, n_fft, float(sample_rate), fmin, fmax, 100.0, -500.0, 1.0
        )
        # Kaldi banks cover n_fft/2 bins; the STFT has n_fft/2 + 1 (Nyquist gets weight 0).
        self.register_buffer("mel_banks", F.pad(banks, (0, 1)), persistent=False)
        self.register_buffer("window", torch.hann_window(win_length, periodic=False), persistent=False)
        self.register_buffer("preemphasis", torch.tensor([[[-0.97, 1.0]]]), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = F.conv1d(wave.unsqueeze(1), self.preemphasis).squeeze(1)
        spec = torch.stft(
            x, self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
            window=self.window, center=True, return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(self.mel_banks, power)
        return ((mel + 1e-5).log() + 4.5).div(5.0).unsqueeze(1)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channel counts to a multiple of 8, never more than 10% below the request (MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


@dataclass(frozen=True)
class BlockSpec:
    """One inverted-residual block of MobileNetV3-Large (Table 1 of the MobileNetV3 paper)."""

    in_ch: int
    kernel: int
    expand_ch: int
    out_ch: int
    use_se: bool
    hardswish: bool
    stride: int

    def scaled(self, width_mult: float) -> BlockSpec:
        return BlockSpec(
            make_divisible(self.in_ch * width_mult), self.kernel, make_divisible(self.expand_ch * width_mult),
            make_divisible(self.out_ch * width_mult), self.use_se, self.hardswish, self.stride,
        )


MOBILENET_V3_LARGE = (
    BlockSpec(16, 3, 16, 16, False, False, 1),
    BlockSpec(16, 3, 64, 24, False, False, 2),
    BlockSpec(24, 3, 72, 24, False, False, 1),
    BlockSpec(24, 5, 72, 40, True, False, 2),
    BlockSpec(40, 5, 120, 40, True, False, 1),
    BlockSpec(40, 5, 120, 40, True, False, 1),
    BlockSpec(40, 3, 240, 80, False, True, 2),
    BlockSpec(80, 3, 200, 80, False, True, 1),
    BlockSpec(80, 3, 184, 80, False, True, 1),
    BlockSpec(80, 3, 184, 80, False, True, 1),
    BlockSpec(80, 3, 480, 112, True, True, 1),
    BlockSpec(112, 3, 672, 112, True, True, 1),
    BlockSpec(112, 5, 672, 160, True, True, 2),
    BlockSpec(160, 5, 960, 160, True, True, 1),
    BlockSpec(160, 5, 960, 160, True, True, 1),
)
LAST_CHANNEL = 1280

# BatchNorm settings the checkpoints were trained with (they matter for running-stat semantics only).
_norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)


class ChannelSqueezeExcitation(nn.Module):
    """Channel attention: global mean -> bottleneck MLP -> sigmoid gate per channel."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        squeeze = make_divisible(channels // reduction)
        self.fc1 = nn.Linear(channels, squeeze)
        self.fc2 = nn.Linear(squeeze, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * gate[:, :, None, None]


class SqueezeExcitationGroup(nn.Module):
    """Holder whose only purpose is the checkpoint key path ``conc_se_layers.0``.

    EfficientAT can run several SE variants concurrently and fuse them; the
    released AudioSet models use the channel variant alone, so there is one.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conc_se_layers = nn.ModuleList([ChannelSqueezeExcitation(channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conc_se_layers[0](x)


class InvertedResidual(nn.Module):
    def __init__(self, spec: BlockSpec):
        super().__init__()
        act = nn.Hardswish if spec.hardswish else nn.ReLU
        layers: list[nn.Module] = []
        if spec.expand_ch != spec.in_ch:
            layers.append(Conv2dNormActivation(spec.in_ch, spec.expand_ch, 1, norm_layer=_norm, activation_layer=act))
        layers.append(Conv2dNormActivation(
            spec.expand_ch, spec.expand_ch, spec.kernel, stride=spec.stride, groups=spec.expand_ch,
            norm_layer=_norm, activation_layer=act,
        ))
        if spec.use_se:
            layers.append(SqueezeExcitationGroup(spec.expand_ch))
        layers.append(Conv2dNormActivation(spec.expand_ch, spec.out_ch, 1, norm_layer=_norm, activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.residual = spec.stride == 1 and spec.in_ch == spec.out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return y + x if self.residual else y


class MobileNetAudio(nn.Module):
    """MobileNetV3 on a 1-channel log-mel image with EfficientAT's MLP head.

    forward(mel (B, 1, F, T)) -> (logits (B, classes), embedding (B, D)), where
    the embedding is the global average of the last feature map, i.e. the
    input of the classifier MLP.
    """

    def __init__(self, width_mult: float = 0.4, num_classes: int = 527, dropout: float = 0.2):
        super().__init__()
        specs = [s.scaled(width_mult) for s in MOBILENET_V3_LARGE]
        last_in = specs[-1].out_ch
        self.embedding_dim = 6 * last_in
        hidden = make_divisible(LAST_CHANNEL * width_mult)
        self.features = nn.Sequential(
            Conv2dNormActivation(1, specs[0].in_ch, 3, stride=2, norm_layer=_norm, activation_layer=nn.Hardswish),
            *(InvertedResidual(s) for s in specs),
            Conv2dNormActivation(last_in, self.embedding_dim, 1, norm_layer=_norm, activation_layer=nn.Hardswish),
        )
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(1),
            nn.Linear(self.embedding_dim, hidden),
            nn.Hardswish(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.classifier[:2](self.features(mel))
        return self.classifier[2:](embedding), embedding


class EfficientAT(nn.Module):
    """Waveform at 32 kHz (B, n) -> (AudioSet probabilities (B, classes), embedding (B, D))."""

    def __init__(self, width_mult: float = 0.4, num_classes: int = 527):
        super().__init__()
        self.mel = MelFrontEnd()
        self.net = MobileNetAudio(width_mult, num_classes)

    @property
    def embedding_dim(self) -> int:
        return self.net.embedding_dim

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, embedding = self.net(self.mel(wave))
        return torch.sigmoid(logits), embedding

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, width_mult: float = 0.4, num_classes: int = 527) -> EfficientAT:
        """Build the model and load an EfficientAT state_dict with strict key and shape matching."""
        model = cls(width_mult, num_classes)
        state = load_state_dict(path)
        try:
            model.net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            missing, unexpected = _key_diff(model.net.state_dict(), state)
            detail = (
                f"missing keys {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                f"unexpected keys {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
                if missing or unexpected else str(exc).splitlines()[-1].strip()
            )
            raise AssetError(
                f"{path} does not match EfficientAT mn (width {width_mult}, {num_classes} classes, mlp head): {detail}"
            ) from None
        return model.eval()


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    if not os.path.isfile(path):
        raise AssetError(f"EfficientAT weights not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for corrupt or non-torch files
        raise AssetError(f"cannot load EfficientAT weights {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AssetError(f"{path} is not a plain state_dict of tensors")
    return state


def _key_diff(expected: dict, got: dict) -> tuple[list[str], list[str]]:
    return sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
