"""Audio encoders: the VGGish log-mel front-end, VGGish weight loading, the EfficientAT adapter."""
from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import save_file

from avs_core.errors import AssetError
from avs_core.modeling.audio_encoders import VGGish, VGGishLogMel, build_audio_encoder


def test_vggish_frontend_makes_096s_examples_of_96x64():
    fe = VGGishLogMel()
    t = torch.arange(16000 * 2) / 16000
    tone = torch.sin(2 * math.pi * 1000 * t)[None]
    ex = fe(tone)
    assert ex.shape == (1, 2, 96, 64)  # 2 s -> two whole 0.96 s examples
    assert fe(torch.zeros(3, 16000)).shape == (3, 1, 96, 64)
    assert fe(torch.zeros(1, 4000)).shape == (1, 1, 96, 64)  # short windows are padded to one example
    # Silence is log(0.01); a 1 kHz tone peaks in the band holding 1 kHz (HTK mel, 125-7500 Hz).
    torch.testing.assert_close(fe(torch.zeros(1, 16000)), torch.full((1, 1, 96, 64), math.log(0.01)))
    mel = lambda f: 2595 * math.log10(1 + f / 700)  # noqa: E731
    edges = torch.linspace(mel(125), mel(7500), 66)
    expected_band = int(((edges[1:-1] - mel(1000)).abs()).argmin())
    assert int(ex[0, 0].mean(0).argmax()) == expected_band


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_vggish_loads_converted_weights(tmp_path, suffix):
    torch.manual_seed(0)
    ref = VGGish()
    path = tmp_path / f"vggish{suffix}"
    state = {k: v.contiguous() for k, v in ref.state_dict().items()}
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    enc = build_audio_encoder({"type": "vggish", "weights": str(path)})
    wave = torch.randn(2, 16000) * 0.1
    with torch.no_grad():
        out = enc(wave)
        expected = ref(VGGishLogMel()(wave).reshape(2, 1, 96, 64))
    assert out.shape == (2, 128)
    torch.testing.assert_close(out, expected)


def test_vggish_rejects_foreign_weights(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(AssetError, match="VGGish"):
        build_audio_encoder({"type": "vggish", "weights": str(path)})
    with pytest.raises(AssetError, match=r"audio_encoder\.weights"):
        build_audio_encoder({"type": "vggish", "weights": str(tmp_path / "none.pth")})


def test_logmel_cnn_separates_silence_from_sound():
    enc = build_audio_encoder({"type": "logmel_cnn", "out_dim": 16}).eval()
    t = torch.arange(16000) / 16000
    with torch.no_grad():
        silent, tone = enc(torch.zeros(1, 16000)), enc(torch.sin(2 * math.pi * 440 * t)[None])
    assert silent.shape == (1, 16) and not torch.allclose(silent, tone)


def test_efficientat_embedding(asset):
    asset("efficientat_mn04")
    enc = build_audio_encoder({"type": "efficientat"}).eval()
    t = torch.arange(16000) / 16000
    with torch.no_grad():
        emb = enc(torch.stack([torch.zeros(16000), torch.sin(2 * math.pi * 440 * t)]))
    assert emb.shape == (2, enc.out_dim) and torch.isfinite(emb).all()
    assert not torch.allclose(emb[0], emb[1])
