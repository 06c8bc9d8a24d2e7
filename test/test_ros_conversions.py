"""Message <-> numpy conversions and config/parameter handling (ROS message types, no DDS)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="ROS 2 Python packages not importable (requirements-ros.txt or a sourced ROS 2)")

from builtin_interfaces.msg import Time  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from avs_core.errors import ConfigError, InputError  # noqa: E402
from avs_ros import audio_transport as at  # noqa: E402
from avs_ros import params  # noqa: E402
from avs_ros.conversions import (  # noqa: E402
    compressed_msg_to_rgb,
    image_msg_to_rgb,
    numpy_to_image_msg,
    rgb_to_compressed_msg,
    stamp_seconds,
    to_stamp,
)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 255, (6, 8, 3), dtype=np.uint8)
HEADER = Header(stamp=Time(sec=12, nanosec=345), frame_id="cam")


@pytest.mark.parametrize("encoding, array", [
    ("rgb8", RGB),
    ("bgr8", RGB[..., ::-1]),
    ("rgba8", np.dstack([RGB, np.full(RGB.shape[:2], 255, np.uint8)])),
    ("8UC3", RGB[..., ::-1]),  # OpenCV convention: BGR
])
def test_color_encodings_decode_to_rgb(encoding, array):
    msg = numpy_to_image_msg(np.ascontiguousarray(array), encoding, HEADER, Image)
    np.testing.assert_array_equal(image_msg_to_rgb(msg), RGB)


def test_mono_images_become_gray_rgb():
    gray = RGB[..., 0]
    out = image_msg_to_rgb(numpy_to_image_msg(gray, "mono8", HEADER, Image))
    assert out.shape == (6, 8, 3) and np.array_equal(out[..., 1], gray)
    out16 = image_msg_to_rgb(numpy_to_image_msg(gray.astype(np.uint16) * 257, "mono16", HEADER, Image))
    np.testing.assert_allclose(out16[..., 0], gray, atol=1)


def test_row_padding_is_removed():
    msg = numpy_to_image_msg(RGB, "rgb8", HEADER, Image)
    padded = np.zeros((6, 8 * 3 + 8), np.uint8)
    padded[:, :24] = RGB.reshape(6, 24)
    msg.step, msg.data = 32, padded.tobytes()
    np.testing.assert_array_equal(image_msg_to_rgb(msg), RGB)


@pytest.mark.parametrize("mutate, message", [
    (lambda m: setattr(m, "encoding", "yuv9"), "unsupported image encoding"),
    (lambda m: setattr(m, "encoding", "bayer_rggb8"), "unsupported image encoding"),
    (lambda m: setattr(m, "data", bytes(10)), "header says"),
    (lambda m: (setattr(m, "width", 0), setattr(m, "height", 0)), "zero-size"),
    (lambda m: setattr(m, "step", 3), "step"),
])
def test_malformed_images_raise_input_error(mutate, message):
    msg = numpy_to_image_msg(RGB, "rgb8", HEADER, Image)
    mutate(msg)
    with pytest.raises(InputError, match=message):
        image_msg_to_rgb(msg)


def test_output_messages_carry_the_source_header_and_layout():
    mask = numpy_to_image_msg(np.full((6, 8), 255, np.uint8), "mono8", HEADER, Image)
    heat = numpy_to_image_msg(np.full((6, 8), 0.25, np.float32), "32FC1", HEADER, Image)
    assert mask.header == HEADER and heat.header == HEADER
    assert (mask.step, heat.step, len(heat.data)) == (8, 32, 6 * 8 * 4)
    assert np.frombuffer(bytes(heat.data), np.float32).max() == 0.25
    with pytest.raises(InputError):
        numpy_to_image_msg(np.zeros((6, 8), np.float64), "32FC1", HEADER, Image)


def test_compressed_round_trip_and_corrupt_data():
    smooth = np.tile(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], (48, 1, 3))
    out = compressed_msg_to_rgb(rgb_to_compressed_msg(smooth, HEADER, CompressedImage, "png"))
    np.testing.assert_array_equal(out, smooth)
    bad = CompressedImage(format="jpeg", data=b"\xff\xd8 not a jpeg")
    with pytest.raises(InputError, match="cannot decode"):
        compressed_msg_to_rgb(bad)
    with pytest.raises(InputError, match="no data"):
        compressed_msg_to_rgb(CompressedImage(format="jpeg"))


def test_stamps_round_trip_to_the_nanosecond():
    assert to_stamp(12.999999999_6, Time) == Time(sec=13, nanosec=0)
    assert to_stamp(1.5, Time) == Time(sec=1, nanosec=500_000_000)
    now = 1700000000.123456
    assert stamp_seconds(to_stamp(now, Time)) == pytest.approx(now, abs=1e-6)


def test_float32_audio_layout_is_validated_and_stamped_by_arrival():
    frames = RNG.normal(0, 0.1, (1600, 2)).astype(np.float32)
    chunk = at.float32_to_chunk(at.chunk_to_float32(frames), 16000, receive_time=100.0)
    np.testing.assert_array_equal(chunk.samples, frames)
    assert chunk.t_first == pytest.approx(99.9) and not chunk.header_stamped
    # A burst: the next chunk "arrived" only 10 ms later but continues the previous one.
    follow = at.float32_to_chunk(at.chunk_to_float32(frames), 16000, 100.01, previous_end=100.0)
    assert follow.t_first == 100.0
    bad = at.chunk_to_float32(frames)
    bad.layout.dim[1].size = 3
    with pytest.raises(InputError, match="layout says"):
        at.float32_to_chunk(bad, 16000, 1.0)
    with pytest.raises(InputError, match="NaN/inf"):
        at.float32_to_chunk(at.chunk_to_float32(np.array([0.0, np.nan], np.float32)), 16000, 1.0)
    with pytest.raises(InputError, match="outside"):
        at.float32_to_chunk(at.chunk_to_float32(frames), 1000, 1.0)


def test_audio_common_transport_when_installed():
    if at.AudioDataStamped is None:
        with pytest.raises(InputError, match="audio_common_msgs is not installed"):
            at.resolve_transport("audio_common")
        assert at.resolve_transport("auto") == "float32"
        pytest.skip("audio_common_msgs not installed (apt install ros-$ROS_DISTRO-audio-common-msgs)")
    samples = RNG.normal(0, 0.1, (800, 1)).astype(np.float32)
    msg = at.chunk_to_audio_common(samples, HEADER)
    chunk = at.audio_common_to_chunk(msg, at.audio_info_msg(16000, 1))
    np.testing.assert_array_equal(chunk.samples, samples)
    assert chunk.t_first == stamp_seconds(HEADER.stamp) and chunk.header_stamped
    with pytest.raises(InputError, match="AudioInfo"):
        at.audio_common_to_chunk(msg, None)


def test_config_file_gives_declared_specs_with_ranges():
    cfg = params.load_config(params.DEFAULT_CONFIG)
    specs = {s.name: s for s in params.node_specs(cfg)}
    assert specs["qos"].default == "sensor_data" and not specs["qos"].runtime
    assert specs["pipeline.mask_threshold"].runtime and specs["pipeline.mask_threshold"].range == (0.0, 1.0)
    assert specs["audio.sample_rate"].default == 16000
    assert "outside" in specs["pipeline.window_s"].check(20.0)
    assert specs["qos"].check("fast") is not None and specs["qos"].check("reliable") is None
    flat = params.as_parameter_dict(params.mic_specs(cfg))
    assert flat["sample_rate"] == 16000 and flat["channels"] == 1


def test_config_errors_name_the_key(tmp_path):
    bad = tmp_path / "avs.yaml"
    bad.write_text("node:\n  qos: fastest\n")
    with pytest.raises(ConfigError, match="qos"):
        params.node_specs(params.load_config(bad))
    bad.write_text("node:\n  window: 3\n")
    with pytest.raises(ConfigError, match="unknown keys"):
        params.node_specs(params.load_config(bad))
    bad.write_text("robot: {}\n")
    with pytest.raises(ConfigError, match="unknown top-level"):
        params.load_config(bad)


def test_pipeline_config_rebuilt_from_parameters():
    cfg = params.pipeline_from_parameters(
        {"pipeline.window_s": 0.5, "pipeline.vision.backends": ["deeplab"], "pipeline.checkpoint": "", "qos": "reliable"},
        {"checkpoint": "x.safetensors", "window_s": 1.0})
    assert cfg == {"checkpoint": None, "window_s": 0.5, "vision": {"backends": ["deeplab"]}}
