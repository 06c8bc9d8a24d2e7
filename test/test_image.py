"""Frame normalisation and image file reading (avs_core.image)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from avs_core.errors import InputError
from avs_core.image import MAX_SIDE, read_image, to_rgb8


def _check_rgb8(out: np.ndarray, h: int, w: int) -> None:
    assert out.shape == (h, w, 3) and out.dtype == np.uint8 and out.flags.c_contiguous


def test_rgb8_passes_through_unchanged():
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out = to_rgb8(img)
    _check_rgb8(out, 5, 7)
    assert np.array_equal(out, img)


@pytest.mark.parametrize("shape", [(4, 6), (4, 6, 1)])
def test_grayscale_is_replicated(shape):
    gray = np.arange(24, dtype=np.uint8).reshape(shape)
    out = to_rgb8(gray)
    _check_rgb8(out, 4, 6)
    for c in range(3):
        assert np.array_equal(out[:, :, c], gray.reshape(4, 6))


def test_alpha_is_dropped():
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 10, 20, 30, 7
    out = to_rgb8(rgba)
    _check_rgb8(out, 2, 3)
    assert (out == [10, 20, 30]).all()
    gray_alpha = np.stack([np.full((2, 3), 50, np.uint8), np.full((2, 3), 200, np.uint8)], axis=2)
    assert (to_rgb8(gray_alpha) == 50).all()


def test_uint16_is_scaled_to_8_bits():
    img = np.array([[0, 257, 32768, 65535]], np.uint16)
    out = to_rgb8(img)
    assert out[0, :, 0].tolist() == [0, 1, 128, 255]


def test_float_in_unit_range_is_scaled():
    img = np.array([[0.0, 0.5, 1.0]], np.float32)
    assert to_rgb8(img)[0, :, 1].tolist() == [0, 128, 255]
    assert to_rgb8(img.astype(np.float64)).dtype == np.uint8
    assert to_rgb8(img.astype(np.float16)).dtype == np.uint8


@pytest.mark.parametrize("bad, words", [
    (np.array([[0.0, 1.5]], np.float32), "[0, 1]"),
    (np.array([[0.0, -0.1]], np.float32), "[0, 1]"),
    (np.array([[0.0, 200.0]], np.float32), "uint8"),  # 0-255 floats: the message says what to do
    (np.array([[0.0, np.nan]], np.float32), "NaN"),
    (np.array([[0.0, np.inf]], np.float64), "NaN"),
])
def test_bad_float_values_are_rejected(bad, words):
    with pytest.raises(InputError) as err:
        to_rgb8(bad)
    assert words in str(err.value)


@pytest.mark.parametrize("bad", [
    [[0, 1], [2, 3]],                         # not an array
    None,
    np.zeros(10, np.uint8),                   # 1-D
    np.zeros((2, 2, 3, 1), np.uint8),         # 4-D
    np.zeros((0, 5, 3), np.uint8),            # empty
    np.zeros((5, 0), np.uint8),
    np.zeros((4, 4, 5), np.uint8),            # 5 channels
    np.zeros((4, 4, 9), np.uint8),            # > 8 channels
    np.zeros((3, 32, 32), np.uint8),          # channels-first
    np.zeros((4, 4, 3), np.int64),            # unsupported dtypes
    np.zeros((4, 4, 3), bool),
    np.zeros((4, 4, 3), np.complex64),
    np.zeros((1, MAX_SIDE + 1), np.uint8),    # absurd side
])
def test_unusable_arrays_raise_input_error(bad):
    with pytest.raises(InputError):
        to_rgb8(bad)


def test_1x1_and_8k_frames_are_accepted():
    _check_rgb8(to_rgb8(np.full((1, 1), 9, np.uint8)), 1, 1)
    out = to_rgb8(np.zeros((4320, 7680), np.uint8))
    _check_rgb8(out, 4320, 7680)


def test_read_image_returns_rgb(tmp_path):
    bgr = np.zeros((3, 4, 3), np.uint8)
    bgr[..., 2] = 255  # red in OpenCV's BGR order
    path = tmp_path / "red.png"
    cv2.imwrite(str(path), bgr)
    out = read_image(path)
    _check_rgb8(out, 3, 4)
    assert (out == [255, 0, 0]).all()


def test_read_image_handles_16bit_gray_and_rgba(tmp_path):
    cv2.imwrite(str(tmp_path / "g16.png"), np.full((2, 2), 65535, np.uint16))
    assert (read_image(tmp_path / "g16.png") == 255).all()
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 0], bgra[..., 3] = 255, 0  # blue, fully transparent
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    assert (read_image(tmp_path / "rgba.png") == [0, 0, 255]).all()


def test_read_image_errors_name_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(InputError, match="corrupt.png"):
        read_image(corrupt)
    with pytest.raises(InputError, match="missing.jpg"):
        read_image(tmp_path / "missing.jpg")
    with pytest.raises(InputError):
        read_image(tmp_path)  # a directory


def test_read_real_asset(asset):
    rgb = read_image(asset("bird_segmentation"))
    _check_rgb8(rgb, 513, 513)
