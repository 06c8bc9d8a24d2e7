"""Audio front-end and the real EfficientAT mn04 tagger on the shared recordings (no mocks)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from avs_core.assets import resolve
from avs_core.audio import AudioFrontend, AudioTagger, is_silent, level_dbfs, read_audio, resample, to_mono_float
from avs_core.audio.efficientat import EfficientAT
from avs_core.errors import AssetError, InputError

KEYBOARD = {"Computer keyboard", "Typing"}


@pytest.fixture(scope="module")
def tagger() -> AudioTagger:
    torch.set_num_threads(2)
    return AudioTagger.from_assets()


@pytest.fixture(scope="module")
def clips() -> dict[str, tuple[np.ndarray, int]]:
    return {name: read_audio(resolve(name)) for name in ("speech", "music", "typing")}


def one_second_windows(samples: np.ndarray, sr: int) -> list[torch.Tensor]:
    """Non-overlapping 1 s windows ending at 1 s, 2 s, ... as the pipeline cuts them."""
    fe = AudioFrontend(sample_rate=32000, window_s=1.0)
    return [fe.window(samples[: end * sr], sr) for end in range(1, len(samples) // sr + 1)]


def tone(freq: float, sr: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# ---------------------------------------------------------------- tagger


def test_tagger_shapes_and_labels(tagger, clips):
    assert len(tagger.labels) == 527
    assert tagger.labels[0] == "Speech" and tagger.labels[137] == "Music"
    assert KEYBOARD <= set(tagger.labels)
    res = tagger.tag(*clips["speech"])
    assert res.probs.shape == (527,) and res.probs.dtype == np.float32
    assert ((res.probs >= 0) & (res.probs <= 1)).all()
    assert res.embedding.shape == (tagger.embedding_dim,) == (384,)
    assert np.isfinite(res.embedding).all() and res.embedding.std() > 0
    top = res.top(3)
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1]


@pytest.mark.parametrize("clip, expected, k", [
    ("speech", {"Speech"}, 1),
    ("music", {"Music"}, 1),
    ("typing", KEYBOARD, 3),
])
def test_tagger_recognises_whole_recordings(tagger, clips, clip, expected, k):
    top = tagger.tag(*clips[clip]).top(k)
    assert expected & {label for label, _ in top}, top
    assert top[0][1] > 0.5


def test_tagger_on_one_second_windows(tagger, clips):
    # Per-window labels are noisier than whole-clip ones (the speech clip has
    # music under it, typing pauses), so require a clear majority, not all.
    def hits(clip, expected, k):
        windows = one_second_windows(*clips[clip])
        assert len(windows) == 10
        results = tagger.tag_batch(windows, 32000)
        return sum(bool(expected & {lab for lab, _ in r.top(k)}) for r in results)

    assert hits("music", {"Music"}, 1) == 10
    assert hits("speech", {"Speech"}, 3) == 10
    assert hits("speech", {"Speech"}, 1) >= 7
    assert hits("typing", KEYBOARD, 3) >= 7
    # and the other way round: music windows are not tagged as typing
    assert hits("music", KEYBOARD, 3) == 0


def test_batch_equals_single(tagger, clips):
    windows = one_second_windows(*clips["typing"])[:3]
    batch = tagger.tag_batch(windows + [clips["speech"][0][:8000]], 32000)
    for w, b in zip(windows, batch):
        single = tagger.tag(w, 32000)
        np.testing.assert_allclose(single.probs, b.probs, atol=1e-5)
        np.testing.assert_allclose(single.embedding, b.embedding, atol=1e-4)
    # a clip of another length runs in its own group and matches its single-clip result
    assert len(batch) == 4
    np.testing.assert_allclose(batch[3].probs, tagger.tag(clips["speech"][0][:8000], 32000).probs, atol=1e-5)


def test_tagger_accepts_other_rates_and_layouts(tagger, clips):
    speech, sr = clips["speech"]
    ref = tagger.tag(speech, sr).probs
    # 48 kHz stereo int16, channels first: front-end resamples and mixes it back.
    up = resample(speech, sr, 48000)
    stereo = np.clip(np.stack([up, up]) * 32767, -32768, 32767).astype(np.int16)
    res = tagger.tag(stereo, 48000)
    assert res.top(1)[0][0] == "Speech"
    assert np.abs(res.probs - ref).max() < 0.05


# ---------------------------------------------------------------- weights


def test_strict_load_and_tampered_state_dict(tmp_path):
    weights = resolve("efficientat_mn04")
    model = EfficientAT.from_checkpoint(weights)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    assert set(model.net.state_dict()) == set(state)

    tampered = dict(state)
    del tampered["classifier.5.bias"]
    bad = tmp_path / "missing_key.pt"
    torch.save(tampered, bad)
    with pytest.raises(AssetError, match=r"missing keys \['classifier\.5\.bias'\]"):
        EfficientAT.from_checkpoint(bad)

    reshaped = dict(state)
    reshaped["classifier.5.weight"] = reshaped["classifier.5.weight"][:10]
    torch.save(reshaped, bad)
    with pytest.raises(AssetError, match="size mismatch"):
        EfficientAT.from_checkpoint(bad)

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint" * 10)
    with pytest.raises(AssetError, match="cannot load EfficientAT weights"):
        EfficientAT.from_checkpoint(garbage)
    with pytest.raises(AssetError, match="not found"):
        EfficientAT.from_checkpoint(tmp_path / "absent.pt")


def test_bad_labels_csv(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("index,mid,display_name\n0,/m/x,Speech\n", encoding="utf-8")
    with pytest.raises(AssetError, match="0..526"):
        AudioTagger.from_files(resolve("efficientat_mn04"), csv)
    with pytest.raises(AssetError, match="cannot read AudioSet labels"):
        AudioTagger.from_files(resolve("efficientat_mn04"), tmp_path / "absent.csv")


# ---------------------------------------------------------------- front-end


def test_resample_48k_stereo_int16_to_32k_mono():
    sr = 48000
    left = tone(440, sr, 1.5, 0.25)
    stereo = (np.stack([left, -0.5 * left], axis=1) * 32767).astype(np.int16)  # (n, 2)
    mono = to_mono_float(stereo, sr)
    assert mono.shape == (72000,) and mono.dtype == np.float32
    np.testing.assert_allclose(mono, 0.25 * left, atol=1e-4)  # mean of the two channels
    out = AudioFrontend().prepare(stereo, sr)
    assert out.shape == (48000,) and out.dtype == np.float32
    # (ch, n) layout is recognised and gives the same signal
    np.testing.assert_array_equal(to_mono_float(stereo.T, sr), mono)


def test_sixteen_channel_array_is_mixed_in_either_layout():
    # A 16-mic array (miniDSP UMA-16): channel k carries the tone scaled by k / 16.
    sr = 16000
    x = tone(440, sr, 1.0, 0.5)
    frames = np.stack([x * k / 16 for k in range(16)], axis=1).astype(np.float32)  # (n, 16)
    expected = x * np.mean(np.arange(16) / 16)
    np.testing.assert_allclose(to_mono_float(frames, sr), expected, atol=1e-6)
    np.testing.assert_allclose(to_mono_float(frames.T, sr), expected, atol=1e-6)


def test_resampled_tone_keeps_its_frequency():
    out = resample(tone(1000, 48000, 1.0), 48000, 32000)
    assert out.shape == (32000,)
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    peak_hz = np.argmax(spectrum) * 32000 / len(out)
    assert abs(peak_hz - 1000) <= 1.0
    # and its level (a sinc resampler passes 1 kHz unchanged)
    assert abs(level_dbfs(out[1000:-1000]) - level_dbfs(tone(1000, 32000, 1.0))) < 0.1
    assert isinstance(resample(torch.from_numpy(out), 32000, 16000), torch.Tensor)


# Expected values from the PCM definition, by hand: a signed b-bit code k means k / 2^(b-1).
PCM_CASES = [
    (np.int16, [-32768, -1, 0, 16384, 32767], [-1.0, -1 / 32768, 0.0, 0.5, 32767 / 32768]),
    (np.int8, [-128, 64, 127], [-1.0, 0.5, 127 / 128]),
    (np.int32, [-2**31, 2**30, 2**31 - 1], [-1.0, 0.5, (2**31 - 1) / 2**31]),
]


@pytest.mark.parametrize("dtype, codes, expected", PCM_CASES)
def test_pcm_to_float_divides_by_half_the_code_range(dtype, codes, expected):
    from avs_core.pcm import pcm_to_float

    out = pcm_to_float(np.array(codes, dtype))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array(expected, np.float32))
    assert out.min() >= -1.0  # the most negative code is exactly -1, never beyond


def test_every_audio_path_scales_pcm_the_same_way():
    from avs_core.streaming import AudioRing

    codes = np.array([-32768, -16384, 0, 32767], np.int16)
    expected = np.array([-1.0, -0.5, 0.0, 32767 / 32768], np.float32)
    np.testing.assert_array_equal(to_mono_float(codes, 16000), expected)
    ring = AudioRing()
    ring.append(codes, 0.0, 16000)
    np.testing.assert_array_equal(ring.window(4 / 16000, 4 / 16000).samples[:, 0], expected)


@pytest.mark.parametrize("rate", [0, -16000, 999, 768_001, 16000.5, float("nan"), "16000", True])
def test_one_sample_rate_validator(rate):
    from avs_core.pcm import check_sample_rate
    from avs_core.streaming import AudioRing

    with pytest.raises(InputError):
        check_sample_rate(rate)
    with pytest.raises(InputError):
        AudioRing().append(np.zeros(16, np.float32), 0.0, rate)
    with pytest.raises(InputError):
        to_mono_float(np.zeros(16, np.float32), rate)


def test_integer_scaling():
    np.testing.assert_allclose(to_mono_float(np.array([-32768, 0, 16384], np.int16), 16000), [-1, 0, 0.5])
    np.testing.assert_allclose(to_mono_float(np.array([0, 128, 255], np.uint8), 16000), [-1, 0, 127 / 128])
    np.testing.assert_allclose(to_mono_float(np.array([-2**31, 2**30], np.int32), 16000), [-1, 0.5])
    np.testing.assert_allclose(to_mono_float(np.array([0.25, -0.5]), 16000), [0.25, -0.5])


@pytest.mark.parametrize("samples, match", [
    (np.array([], np.float32), "empty"),
    (np.zeros((0, 2), np.int16), "empty"),
    (np.array([0.0, np.nan, 0.1], np.float32), "NaN/inf"),
    (np.array([0.0, np.inf], np.float64), "NaN/inf"),
    (np.array([1, 2], np.int64), "unsupported audio dtype"),
    (np.array([1 + 1j, 0j]), "numeric PCM"),
    (np.array([True, False]), "numeric PCM"),
    (np.array(["a", "b"]), "numeric PCM"),
    ([[0.1, 0.2], [0.3]], "not a numeric array"),
    (np.zeros((100, 100), np.float32), "no channel axis"),  # square and over 64 on both axes
    (np.zeros((2, 3, 4), np.float32), "1-D or 2-D"),
    (np.float32(0.5), "1-D or 2-D"),
])
def test_bad_samples_raise_input_error(samples, match):
    with pytest.raises(InputError, match=match):
        to_mono_float(samples, 32000)


@pytest.mark.parametrize("rate", [0, -16000, 44100.5, float("nan"), float("inf"), 10**9, "32000", None, True])
def test_bad_sample_rate_raises_input_error(rate):
    with pytest.raises(InputError, match="sample rate"):
        to_mono_float(np.zeros(100, np.float32), rate)


def test_window_takes_the_last_second_and_pads_short_input():
    fe = AudioFrontend(sample_rate=32000, window_s=1.0)
    ramp = np.arange(3 * 32000, dtype=np.float32) / 1e5
    w = fe.window(ramp, 32000)
    assert isinstance(w, torch.Tensor) and w.shape == (32000,) and w.dtype == torch.float32
    np.testing.assert_array_equal(w.numpy(), ramp[-32000:])

    short = tone(500, 16000, 0.25)  # 0.25 s at 16 kHz -> 8000 samples at 32 kHz, after 24000 zeros
    w = fe.window(short, 16000)
    assert w.shape == (32000,)
    assert torch.count_nonzero(w[:24000]) == 0
    assert level_dbfs(w[24500:31500]) == pytest.approx(level_dbfs(short), abs=0.2)

    # a long 48 kHz stereo int16 stream, channels first: the window equals the tail of the whole stream
    stream = (np.stack([tone(300, 48000, 5.0), tone(700, 48000, 5.0)]) * 20000).astype(np.int16)
    np.testing.assert_allclose(fe.window(stream, 48000).numpy(), fe.prepare(stream, 48000)[-32000:], atol=1e-5)

    w = fe.window(tone(500, 44100, 2.0), 44100)
    assert w.shape == (32000,)
    assert level_dbfs(w) == pytest.approx(level_dbfs(tone(500, 32000, 1.0)), abs=0.1)


def test_silence_gate(clips):
    rng = np.random.default_rng(0)
    assert level_dbfs(np.zeros(32000, np.float32)) == float("-inf")
    assert is_silent(np.zeros(32000, np.float32))
    noise = rng.standard_normal(32000).astype(np.float32) * 10 ** (-70 / 20)
    assert level_dbfs(noise) == pytest.approx(-70, abs=0.2)
    assert is_silent(noise)
    assert not is_silent(noise, threshold_dbfs=-80)
    assert level_dbfs(tone(1000, 32000, 1.0, amplitude=1.0)) == pytest.approx(-3.01, abs=0.01)
    speech, sr = clips["speech"]
    assert not is_silent(speech)
    assert not any(is_silent(w) for w in one_second_windows(speech, sr))


def test_read_audio_wav_webm_and_bad_files(tmp_path):
    x, sr = read_audio(resolve("speech"))
    assert sr == 32000 and x.shape == (320000,) and x.dtype == np.float32
    # WebM/Vorbis is not libsndfile's: decoded through PyAV, channels last.
    y, sr = read_audio(resolve("bbb_1s"))
    assert sr == 44100 and y.ndim == 2 and y.shape[1] == 2 and 44000 < y.shape[0] < 45000
    assert np.isfinite(y).all() and 0.01 < np.abs(y).max() <= 1.0

    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)))
    with pytest.raises(InputError, match="cannot read audio"):
        read_audio(corrupt)
    with pytest.raises(InputError, match="not found"):
        read_audio(tmp_path / "absent.wav")
