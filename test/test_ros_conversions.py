"""Message <-> numpy conversions and config/parameter handling (ROS message types, no DDS)."""
from __future__ import annotations

import os
import struct
import subprocess
import sys

import msg_fixtures
import numpy as np
import pytest
from conftest import require_package

require_package("rclpy", "ROS 2 Python packages (requirements-ros.txt or a sourced ROS 2)")

from builtin_interfaces.msg import Time  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from std_msgs.msg import Header, Int16MultiArray  # noqa: E402

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
    decoder = at.AudioDecoder("float32", 16000)
    chunk = decoder.decode(at.chunk_to_float32(frames), receive_time=100.0)
    np.testing.assert_array_equal(chunk.samples, frames)
    assert chunk.t_first == pytest.approx(99.9) and not chunk.header_stamped
    # A second 0.1 s chunk that arrives only 10 ms after the first proves the first came at
    # least 90 ms late, so the second is stamped from its own arrival.
    follow = decoder.decode(at.chunk_to_float32(frames), 100.01)
    assert follow.t_first == pytest.approx(99.91)
    bad = at.chunk_to_float32(frames)
    bad.layout.dim[1].size = 3
    with pytest.raises(InputError, match="layout says"):
        decoder.decode(bad, 1.0)
    with pytest.raises(InputError, match="NaN/inf"):
        decoder.decode(at.chunk_to_float32(np.array([0.0, np.nan], np.float32)), 1.0)
    with pytest.raises(InputError, match="outside"):
        at.AudioDecoder("float32", 500)


def test_int16_multiarray_as_hobby_nodes_publish_it():
    # ros2_whisper-style: mono, empty layout, raw int16 values; full scale is 2^15.
    msg = Int16MultiArray(data=[16384, -16384, -32768, 0])
    chunk = at.AudioDecoder("int16", 16000).decode(msg, receive_time=50.0)
    np.testing.assert_array_equal(chunk.samples[:, 0], [0.5, -0.5, -1.0, 0.0])
    assert chunk.t_first == pytest.approx(50.0 - 4 / 16000)


# ---------------------------------------------------------------- audio_common_msgs, real message classes
PCM = [16384, -16384, 8192, -32768, 0, 32767]  # interleaved stereo S16LE


def _ros_drivers_info(msgs, rate=16000, channels=2, fmt="S16LE", coding="wave"):
    return msgs.AudioInfo(channels=channels, sample_rate=rate, sample_format=fmt, bitrate=rate * channels * 16,
                          coding_format=coding)


@pytest.fixture(scope="module")
def ros_drivers():
    with msg_fixtures.activated("ros_drivers") as msgs:
        yield msgs


def test_ros_drivers_variant_is_detected_by_its_fields(ros_drivers):
    assert ros_drivers.variant == "ros_drivers"
    assert at.resolve_transport("auto") == "audio_common_stamped"
    with pytest.raises(InputError, match="ros_drivers variant"):
        at.resolve_transport("audio_stamped")
    assert at.type_name(ros_drivers.AudioDataStamped) == "audio_common_msgs/msg/AudioDataStamped"
    assert at.transport_for_type("audio_common_msgs/msg/AudioData") == "audio_common"


def test_audio_data_stamped_s16le_after_dds_serialization(ros_drivers):
    msg = ros_drivers.AudioDataStamped(header=Header(stamp=Time(sec=7, nanosec=250_000_000), frame_id="mic"))
    msg.audio.data = struct.pack("<6h", *PCM)
    msg = deserialize_message(serialize_message(msg), ros_drivers.AudioDataStamped)  # the CDR a robot sends
    decoder = at.AudioDecoder("audio_common_stamped")
    assert decoder.decode(msg, receive_time=9.0) is None  # before the first AudioInfo: held
    assert decoder.info(_ros_drivers_info(ros_drivers)) is None
    [(held, received)] = decoder.take_held()
    assert received == 9.0 and decoder.take_held() == []
    chunk = decoder.decode(held, receive_time=received)
    np.testing.assert_array_equal(chunk.samples, np.array(PCM, np.float32).reshape(3, 2) / 32768)
    assert (chunk.sample_rate, chunk.t_first, chunk.header_stamped) == (16000, 7.25, True)
    change = decoder.info(_ros_drivers_info(ros_drivers, rate=44100))
    assert "sample_rate 16000 -> 44100" in change
    assert "channels 2 -> 1" in decoder.info(_ros_drivers_info(ros_drivers, rate=44100, channels=1))
    msg.header.stamp = Time()
    with pytest.raises(InputError, match="zero header stamp"):
        decoder.decode(msg, 9.0)


def test_audio_before_the_first_audio_info_is_held_then_given_up_on(ros_drivers):
    # Separate topics, no ordering: the latched AudioInfo may come after the first chunks.
    decoder = at.AudioDecoder("audio_common")
    tone = [struct.pack("<1600h", *([k * 100] * 1600)) for k in range(1, 4)]
    assert [decoder.decode(ros_drivers.AudioData(data=d), 20.0 + 0.1 * k) for k, d in enumerate(tone)] == [None] * 3
    decoder.info(_ros_drivers_info(ros_drivers, channels=1))
    chunks = [decoder.decode(msg, t) for msg, t in decoder.take_held()]
    # Decoded in order and stamped from their own receipt times: contiguous from 19.9 s.
    assert [c.samples[0, 0] * 32768 for c in chunks] == pytest.approx([100, 200, 300])
    assert [c.t_first for c in chunks] == pytest.approx([19.9, 20.0, 20.1])
    # No AudioInfo at all: an error once the first held chunk is over a second old.
    decoder = at.AudioDecoder("audio_common")
    assert decoder.decode(ros_drivers.AudioData(data=tone[0]), 20.0) is None
    assert decoder.decode(ros_drivers.AudioData(data=tone[0]), 21.0) is None
    with pytest.raises(InputError, match="no AudioInfo received on 'audio_info' within 1 s"):
        decoder.decode(ros_drivers.AudioData(data=tone[0]), 21.05)
    assert decoder.take_held() == []


def test_unstamped_audio_data_is_stamped_at_receipt_minus_duration(ros_drivers):
    decoder = at.AudioDecoder("audio_common")
    decoder.info(_ros_drivers_info(ros_drivers, channels=1))
    chunk = decoder.decode(ros_drivers.AudioData(data=struct.pack("<1600h", *([1000] * 1600))), receive_time=20.0)
    assert chunk.t_first == pytest.approx(19.9) and not chunk.header_stamped
    assert chunk.samples.shape == (1600, 1) and chunk.samples[0, 0] == pytest.approx(1000 / 32768)


def test_s24le_and_unsupported_codings(ros_drivers):
    decoder = at.AudioDecoder("audio_common")
    decoder.info(_ros_drivers_info(ros_drivers, channels=1, fmt="S24LE"))
    # 0x400000 = 2^22 is half of the 24-bit full scale 2^23; 0x800000 is its most negative value.
    chunk = decoder.decode(ros_drivers.AudioData(data=bytes([0, 0, 0x40, 0, 0, 0x80])), 5.0)
    np.testing.assert_array_equal(chunk.samples[:, 0], [0.5, -1.0])
    with pytest.raises(InputError, match="not a whole number"):
        decoder.decode(ros_drivers.AudioData(data=bytes(4)), 5.0)
    decoder.info(_ros_drivers_info(ros_drivers, coding="opus"))
    with pytest.raises(InputError, match="format:=wave"):
        decoder.decode(ros_drivers.AudioData(data=bytes(64)), 5.0)


def _mp3_bytes(tone_hz: float, seconds: float, rate: int = 16000) -> bytes:
    import av

    codec = av.CodecContext.create("libmp3lame", "w")
    codec.sample_rate, codec.layout, codec.format = rate, "mono", "s16p"
    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.5 * np.sin(2 * np.pi * tone_hz * t) * 32767).astype(np.int16)
    out = b""
    for i in range(0, len(pcm), 1152):
        frame = av.AudioFrame.from_ndarray(pcm[None, i:i + 1152], format="s16p", layout="mono")
        frame.sample_rate = rate
        out += b"".join(bytes(p) for p in codec.encode(frame))
    return out + b"".join(bytes(p) for p in codec.encode(None))


def test_mp3_chunks_are_decoded_with_one_notice(ros_drivers):
    data = _mp3_bytes(440.0, 2.0)
    decoder = at.AudioDecoder("audio_common")
    decoder.info(_ros_drivers_info(ros_drivers, channels=1, fmt="", coding="mp3"))
    chunks = [decoder.decode(ros_drivers.AudioData(data=data[i:i + 500]), 10.0 + i / 4000) for i in range(0, len(data), 500)]
    samples = np.concatenate([c.samples[:, 0] for c in chunks if c is not None])
    assert len(decoder.notices) == 1 and "format:=wave" in decoder.notices[0]
    assert abs(len(samples) - 32000) <= 2 * 1152  # the codec's priming/padding
    spectrum = np.abs(np.fft.rfft(samples[4000:20000]))
    assert np.fft.rfftfreq(16000, 1 / 16000)[np.argmax(spectrum)] == pytest.approx(440.0, abs=2.0)


def test_encoder_and_decoder_agree_for_every_ros_drivers_transport(ros_drivers):
    frames = RNG.uniform(-0.9, 0.9, (800, 2)).astype(np.float32)
    for transport in ("audio_common_stamped", "audio_common", "int16", "float32"):
        encoder = at.AudioEncoder(transport, 16000, channels=2)
        decoder = at.AudioDecoder(transport, 16000)
        if encoder.info_type is not None:
            decoder.info(encoder.info_msg())
        msg = encoder.encode(frames, HEADER)
        assert isinstance(msg, encoder.msg_type) and isinstance(msg, decoder.msg_type)
        chunk = decoder.decode(deserialize_message(serialize_message(msg), encoder.msg_type), 100.0)
        np.testing.assert_allclose(chunk.samples, frames, atol=1 / 32768 if transport != "float32" else 0)
        assert chunk.header_stamped == (transport == "audio_common_stamped")


def test_detections_one_per_sounding_region_as_vision_msgs(ros_drivers):
    from types import SimpleNamespace

    from vision_msgs.msg import Detection2DArray

    from avs_ros.detections import detection_types, detections_msg

    mask = np.zeros((20, 30), bool)
    mask[2:6, 3:9] = True  # rows 2..5, columns 3..8: a 6 x 4 box
    mask[10:13, 20:30] = True  # a 10 x 3 box at the right edge
    mask[18, 0] = True  # a speck below min_pixels: no detection
    dog = SimpleNamespace(label="dog", score=0.6, mask=np.zeros_like(mask))
    dog.mask[1:7, 2:10] = True  # the instance that produced the first region
    result = SimpleNamespace(mask=mask, labels=[("person", 0.8), ("dog", 0.5)], instances=[dog])
    msgs = detection_types()
    array = deserialize_message(serialize_message(detections_msg(msgs, HEADER, result)), Detection2DArray)
    assert array.header == HEADER and len(array.detections) == 2
    by_class = {d.results[0].hypothesis.class_id: d for d in array.detections}
    first, second = by_class["dog"], by_class["person"]  # the second region has no instance: the best label
    assert (first.bbox.center.position.x, first.bbox.center.position.y, first.bbox.size_x, first.bbox.size_y) == (6.0, 4.0, 6.0, 4.0)
    assert (second.bbox.center.position.x, second.bbox.center.position.y, second.bbox.size_x, second.bbox.size_y) == (25.0, 11.5, 10.0, 3.0)
    assert first.results[0].hypothesis.score == 0.6 and second.results[0].hypothesis.score == 0.8
    assert first.header == HEADER
    empty = SimpleNamespace(mask=np.zeros_like(mask), labels=[], instances=[])
    assert detections_msg(msgs, HEADER, empty).detections == []


FIELD_CHECKS = """
import array, numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from avs_ros import audio_transport as at
from avs_ros.conversions import numpy_to_image_msg, rgb_to_compressed_msg
try:  # the child runs with field checks on, as every Humble process does
    Image().data = [256]
    raise AssertionError("field checks are off")
except AssertionError as exc:
    assert "field checks are off" not in str(exc), exc
rng = np.random.default_rng(1)
rgb = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
heat = rng.random((480, 640), dtype=np.float32)
msgs = {"rgb8": numpy_to_image_msg(rgb, "rgb8", Header(), Image), "32FC1": numpy_to_image_msg(heat, "32FC1", Header(), Image),
        "jpeg": rgb_to_compressed_msg(rgb, Header(), CompressedImage)}
frames = rng.uniform(-0.9, 0.9, (1600, 2)).astype(np.float32)
for transport in ("audio_common_stamped", "audio_common", "int16", "float32"):
    msgs[transport] = at.AudioEncoder(transport, 16000, channels=2).encode(frames, Header())
fields = {k: (m.audio.data if hasattr(m, "audio") else m.data) for k, m in msgs.items()}
wanted = {"rgb8": "B", "32FC1": "B", "jpeg": "B", "audio_common_stamped": "B", "audio_common": "B", "int16": "h", "float32": "f"}
for key, typecode in wanted.items():  # an array.array of the field's type skips the per-element check
    assert isinstance(fields[key], array.array) and fields[key].typecode == typecode, (key, type(fields[key]))
assert bytes(fields["rgb8"]) == rgb.tobytes() and bytes(fields["32FC1"]) == heat.tobytes()
assert np.array_equal(np.frombuffer(fields["float32"], np.float32), frames.ravel())
pcm = np.frombuffer(fields["audio_common"], "<i2").reshape(-1, 2)
assert np.array_equal(pcm, np.frombuffer(fields["int16"], np.int16).reshape(-1, 2))
assert np.abs(pcm / 32768 - frames).max() <= 1 / 32768
print("FIELD CHECKS OK")
"""


def test_published_arrays_skip_the_per_element_field_check():
    """With field checks on (every Humble process), a message sequence set from bytes or numpy is checked
    element by element in Python (~57 ms per 640x480 rgb8 frame); outputs and the players hand over
    array.array instead, which the setter stores as it is."""
    env = dict(os.environ, ROS_PYTHON_CHECK_FIELDS="1", **msg_fixtures.env("ros_drivers"))
    env["PYTHONPATH"] = os.pathsep.join([str(msg_fixtures.ROOT), env["PYTHONPATH"]])
    result = subprocess.run([sys.executable, "-c", FIELD_CHECKS], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "FIELD CHECKS OK" in result.stdout, result.stderr[-3000:]


MGONZS13_CHECK = """
import struct, numpy as np
from rclpy.serialization import serialize_message, deserialize_message
from avs_core.errors import InputError
from avs_ros import audio_transport as at
from std_msgs.msg import Header
from builtin_interfaces.msg import Time
msgs = at.audio_msgs()
assert msgs.variant == "mgonzs13", msgs.variant
assert at.resolve_transport("auto") == "audio_stamped"
assert at.available_transports() == ["audio_stamped", "float32", "int16"]
msg = msgs.AudioStamped(header=Header(stamp=Time(sec=3, nanosec=500_000_000)))
msg.audio.info.format, msg.audio.info.channels, msg.audio.info.rate, msg.audio.info.chunk = 8, 2, 16000, 3  # paInt16
msg.audio.audio_data.int16_data = [16384, -16384, 8192, -32768, 0, 32767]
msg = deserialize_message(serialize_message(msg), msgs.AudioStamped)
chunk = at.AudioDecoder("audio_stamped").decode(msg, receive_time=9.0)
np.testing.assert_array_equal(chunk.samples, np.array([16384, -16384, 8192, -32768, 0, 32767], np.float32).reshape(3, 2) / 32768)
assert (chunk.t_first, chunk.sample_rate, chunk.header_stamped) == (3.5, 16000, True)
msg.audio.info.format, msg.audio.audio_data.float32_data = 1, [0.25, -0.25]  # paFloat32
assert at.AudioDecoder("audio_stamped").decode(msg, 9.0).samples.tolist() == [[0.25, -0.25]]
msg.audio.info.format = 4  # paInt24: no field carries it
try:
    at.AudioDecoder("audio_stamped").decode(msg, 9.0)
    raise AssertionError("paInt24 accepted")
except InputError as exc:
    assert "paInt24" in str(exc)
frames = np.random.default_rng(0).uniform(-0.9, 0.9, (400, 1)).astype(np.float32)
enc = at.AudioEncoder("audio_stamped", 16000)
out = at.AudioDecoder("audio_stamped").decode(enc.encode(frames, msg.header), 9.0)
np.testing.assert_allclose(out.samples, frames, atol=1 / 32768)
print("MGONZS13 OK")
"""


def test_mgonzs13_audio_stamped_in_a_process_with_that_variant():
    env = dict(os.environ, **msg_fixtures.env("mgonzs13"))
    env["PYTHONPATH"] = os.pathsep.join([str(msg_fixtures.ROOT), env["PYTHONPATH"]])
    result = subprocess.run([sys.executable, "-c", MGONZS13_CHECK], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "MGONZS13 OK" in result.stdout, result.stderr[-3000:]


def test_config_file_gives_declared_specs_with_ranges():
    cfg = params.load_config(params.DEFAULT_CONFIG)
    specs = {s.name: s for s in params.node_specs(cfg)}
    assert not specs["qos"].runtime
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
