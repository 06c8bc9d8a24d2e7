"""Audio on ROS topics: the message sets robots publish, decoded into stamped float32 chunks.

Transports (node parameter ``audio.transport``; ``auto`` picks the first that applies):

* ``audio_common_stamped``: ros-drivers audio_common 0.4 ``AudioDataStamped`` (PCM bytes,
  header stamp = capture time of the first sample) + ``AudioInfo`` on ``audio_info``
  (latched). The audio_capture_node publishes it on ``/audio/audio_stamped``.
* ``audio_common``: the same driver's unstamped ``AudioData`` on ``/audio/audio``.
* ``audio_stamped``: mgonzs13/audio_common ``AudioStamped`` (typed sample arrays and the
  format inside every message). That stack ships its own package named
  ``audio_common_msgs``, so the variant is told apart by its message fields.
* ``int16`` / ``float32``: ``std_msgs/Int16MultiArray`` (hobby nodes, ros2_whisper) and
  ``Float32MultiArray``. Interleaved samples; ``layout.dim`` = [("samples", frames),
  ("channels", channels)] or empty for mono. The sample rate is the ``audio.sample_rate``
  parameter.

Messages without a header are stamped on the receiver's ROS clock (sim time honoured) from
their receipt: ``avs_core.streaming.ArrivalClock`` counts samples and takes the earliest
receipt of the last second as the reference, so late deliveries never shift the audio
against the frames. Every message is validated; bad ones raise InputError
with what to change.
"""
from __future__ import annotations

import functools
import importlib
from collections import deque
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from avs_core.errors import InputError
# The one PCM rule and sample-rate validator of every audio path (avs_core.pcm).
from avs_core.pcm import check_sample_rate as check_rate
from avs_core.pcm import pcm_to_float
from avs_core.streaming import ArrivalClock

from .conversions import msg_array, stamp_seconds

TRANSPORTS = ("auto", "audio_common_stamped", "audio_common", "audio_stamped", "int16", "float32")
# GStreamer sample formats (ros-drivers AudioInfo.sample_format); S24LE is packed 3-byte PCM.
_PCM_FORMATS = {"S8": "i1", "U8": "u1", "S16LE": "<i2", "S16BE": ">i2", "S24LE": "S24", "S32LE": "<i4",
                "S32BE": ">i4", "F32LE": "<f4", "F32BE": ">f4", "F64LE": "<f8"}
_RAW_CODINGS = {"", "wave", "wav", "raw", "pcm"}
# PortAudio sample-format constants used by mgonzs13 AudioInfo.format -> the AudioData field holding the samples.
_PA_FORMATS = {1: "float32_data", 2: "int32_data", 8: "int16_data", 16: "int8_data", 32: "uint8_data"}
_PA_NAMES = {1: "paFloat32", 2: "paInt32", 4: "paInt24", 8: "paInt16", 16: "paInt8", 32: "paUInt8"}
# Where each transport's publisher puts its audio: audio_capture_node in namespace `audio`,
# mgonzs13 audio_capturer_node on `audio`; MultiArray publishers have no standard name.
DRIVER_TOPICS = {"audio_common_stamped": "/audio/audio_stamped", "audio_common": "/audio/audio", "audio_stamped": "/audio",
                 "int16": "/audio/audio", "float32": "/audio/audio"}
DRIVER_HINT = ("audio_capture_node publishes mp3 unless told otherwise: launch it with format:=wave "
               "(sample_format:=S16LE) for raw PCM")


@dataclass
class AudioChunk:
    samples: np.ndarray  # (frames, channels) float32
    sample_rate: int
    t_first: float  # capture time of the first sample, seconds on the ROS clock
    header_stamped: bool  # False when t_first was derived from the receive time

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


@functools.lru_cache(maxsize=1)
def audio_msgs() -> SimpleNamespace | None:
    """The installed ``audio_common_msgs`` and which variant it is, or None.

    ``variant`` is ``ros_drivers`` (AudioData{uint8[] data}) or ``mgonzs13`` (AudioStamped with
    typed arrays), read from the message fields: both packages have the same name.
    """
    try:
        msg = importlib.import_module("audio_common_msgs.msg")
    except ImportError:  # not on PyPI; apt: ros-$ROS_DISTRO-audio-common-msgs
        return None
    data_fields = getattr(getattr(msg, "AudioData", None), "get_fields_and_field_types", dict)()
    if "data" in data_fields and hasattr(msg, "AudioDataStamped") and hasattr(msg, "AudioInfo"):
        return SimpleNamespace(variant="ros_drivers", AudioData=msg.AudioData, AudioDataStamped=msg.AudioDataStamped,
                               AudioInfo=msg.AudioInfo)
    if "int16_data" in data_fields and hasattr(msg, "AudioStamped"):
        return SimpleNamespace(variant="mgonzs13", AudioData=msg.AudioData, AudioStamped=msg.AudioStamped,
                               Audio=msg.Audio, AudioInfo=msg.AudioInfo)
    return SimpleNamespace(variant=f"unknown (AudioData fields {sorted(data_fields)})")


def available_transports() -> list[str]:
    msgs = audio_msgs()
    variant = getattr(msgs, "variant", None)
    own = {"ros_drivers": ["audio_common_stamped", "audio_common"], "mgonzs13": ["audio_stamped"]}.get(variant, [])
    return own + ["float32", "int16"]


def resolve_transport(name: str) -> str:
    if name not in TRANSPORTS:
        raise InputError(f"audio transport must be one of {TRANSPORTS}, got {name!r}")
    available = available_transports()
    if name == "auto":
        return available[0]
    if name not in available:
        msgs = audio_msgs()
        installed = "audio_common_msgs is not installed (apt install ros-$ROS_DISTRO-audio-common-msgs)" if msgs is None \
            else f"the installed audio_common_msgs is the {msgs.variant} variant"
        raise InputError(f"audio transport {name!r} is not available: {installed}; available: {', '.join(available)}")
    return name


def type_name(msg_type) -> str:
    """ROS type name of a message class, as the graph reports it (``pkg/msg/Name``)."""
    return f"{msg_type.__module__.split('.')[0]}/msg/{msg_type.__name__}"


# Types seen on audio topics -> the transport that reads them.
_TRANSPORT_OF_TYPE = {
    "audio_common_msgs/msg/AudioDataStamped": "audio_common_stamped",
    "audio_common_msgs/msg/AudioData": "audio_common",
    "audio_common_msgs/msg/AudioStamped": "audio_stamped",
    "std_msgs/msg/Int16MultiArray": "int16",
    "std_msgs/msg/Float32MultiArray": "float32",
}


def transport_for_type(name: str) -> str | None:
    return _TRANSPORT_OF_TYPE.get(name)


def _finite(samples: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(samples)):
        bad = int(samples.size - np.count_nonzero(np.isfinite(samples)))
        raise InputError(f"audio chunk has {bad} NaN/inf samples of {samples.size}")
    return samples


def _frames(data: np.ndarray, channels: int, what: str) -> np.ndarray:
    if data.size == 0:
        raise InputError("empty audio chunk")
    if channels < 1:
        raise InputError(f"{what} says {channels} channels")
    if data.size % channels:
        raise InputError(f"{data.size} samples are not a whole number of {channels}-channel frames")
    return _finite(pcm_to_float(data).reshape(-1, channels))


def multiarray_samples(msg) -> np.ndarray:
    """Int16/Float32MultiArray -> (n, channels) float32 frames (the message carries no rate or stamp)."""
    data = np.asarray(msg.data)
    dims = list(msg.layout.dim)
    channels = 1
    if dims:
        if len(dims) != 2 or dims[0].label != "samples" or dims[1].label != "channels":
            raise InputError(f"audio layout must be [samples, channels] or empty (mono), got {[d.label for d in dims]}")
        frames, channels = int(dims[0].size), int(dims[1].size)
        if frames * channels != data.size:
            raise InputError(f"audio layout says {frames} samples x {channels} channels but data has {data.size} values")
    return _frames(data, channels, "layout")


def _multiarray(samples: np.ndarray, msg_type, typecode: str):
    frames = np.asarray(samples)
    if frames.ndim == 1:
        frames = frames[:, None]
    n, ch = frames.shape
    from std_msgs.msg import MultiArrayDimension

    msg = msg_type()
    msg.layout.dim = [MultiArrayDimension(label="samples", size=n, stride=n * ch),
                      MultiArrayDimension(label="channels", size=ch, stride=ch)]
    msg.data = msg_array(frames.ravel(), typecode)
    return msg


def chunk_to_float32(samples: np.ndarray):
    from std_msgs.msg import Float32MultiArray

    return _multiarray(np.asarray(samples, np.float32), Float32MultiArray, "f")


def chunk_to_int16(samples: np.ndarray):
    from std_msgs.msg import Int16MultiArray

    return _multiarray(float_to_s16(samples), Int16MultiArray, "h")


def float_to_s16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(samples, np.float32) * 32768.0), -32768, 32767).astype(np.int16)


class _Mp3Stream:
    """Incremental mp3 decoder (PyAV) for the byte stream of consecutive AudioData messages."""

    def __init__(self):
        import av

        self._codec = av.CodecContext.create("mp3", "r")

    def decode(self, raw: bytes) -> tuple[np.ndarray, int] | None:
        frames = []
        rate = None
        for packet in self._codec.parse(raw):
            for frame in self._codec.decode(packet):
                pcm = frame.to_ndarray()  # planar (channels, n) or packed (1, n*channels)
                channels = len(frame.layout.channels)
                pcm = pcm.T if frame.format.is_planar else pcm.reshape(-1, channels)
                frames.append(pcm_to_float(np.ascontiguousarray(pcm)))
                rate = frame.sample_rate
        if not frames:
            return None  # the decoder needs more bytes before it emits a frame
        return np.concatenate(frames), int(rate)


class AudioDecoder:
    """Turns the messages of one transport into AudioChunks, keeping the stream's format state.

    ``info(msg)`` takes a ros-drivers ``AudioInfo`` (the mgonzs13 one travels inside each
    message) and returns a description of what changed when the format changed mid-stream
    (the audio ring resets itself when the rate or channel count of its chunks changes). ``decode(msg, receive_time)``
    returns an AudioChunk or None (mp3 bytes that do not complete a frame yet, or a ros-drivers
    chunk held until the first AudioInfo: ``take_held`` returns those) and raises
    InputError for anything unusable. ``notices`` collects one-time explanations (mp3
    decoding) for the caller to log.
    """

    # AudioInfo and audio travel on separate topics, so the first chunks may arrive before the latched
    # AudioInfo: they are held (at most this long, on the receipt clock) and decoded once it is there.
    INFO_GRACE_S = 1.0

    def __init__(self, transport: str, sample_rate: int = 16000, max_lag_s: float = 1.0):
        self.transport = resolve_transport(transport)
        self.declared_rate = check_rate(sample_rate)
        self.max_lag_s = max_lag_s
        self.current_info = None
        self.previous_end: float | None = None  # end of the last chunk: decoded mp3 continues it
        self.arrivals = ArrivalClock()  # capture times of unstamped transports
        self.notices: list[str] = []
        self._mp3: _Mp3Stream | None = None
        self._held: deque = deque(maxlen=256)  # (msg, receive_time) that came before any AudioInfo
        msgs = audio_msgs()
        std = importlib.import_module("std_msgs.msg")
        self.msg_type = {"audio_common_stamped": lambda: msgs.AudioDataStamped, "audio_common": lambda: msgs.AudioData,
                         "audio_stamped": lambda: msgs.AudioStamped, "int16": lambda: std.Int16MultiArray,
                         "float32": lambda: std.Float32MultiArray}[self.transport]()
        self.info_type = msgs.AudioInfo if self.transport in ("audio_common_stamped", "audio_common") else None
        self.stamped = self.transport in ("audio_common_stamped", "audio_stamped")

    def reset(self) -> None:
        """Forget stream continuity (after a clock jump); the format state stays."""
        self.previous_end = None
        self.arrivals.reset()

    # ------------------------------------------------------------------ ros-drivers AudioInfo
    def info(self, msg) -> str | None:
        previous, self.current_info = self.current_info, msg
        self._mp3 = None if (msg.coding_format or "").lower() != "mp3" else self._mp3
        if previous is None:
            return None
        keys = ("channels", "sample_rate", "sample_format", "coding_format")
        changed = [f"{k} {getattr(previous, k)!r} -> {getattr(msg, k)!r}" for k in keys if getattr(previous, k) != getattr(msg, k)]
        return ", ".join(changed) or None

    def take_held(self) -> list:
        """The (msg, receive_time) pairs held for want of an AudioInfo, oldest first, to decode now that it came."""
        held = list(self._held)
        self._held.clear()
        return held

    def _hold_until_info(self, msg, receive_time: float) -> None:
        self._held.append((msg, receive_time))
        if receive_time - self._held[0][1] > self.INFO_GRACE_S:
            self._held.clear()
            raise InputError(f"no AudioInfo received on 'audio_info' within {self.INFO_GRACE_S:g} s of the first audio: "
                             "cannot interpret the PCM bytes. The driver latches it (transient-local): check that it "
                             "runs and that 'audio_info' is remapped beside 'audio' (e.g. /audio/audio_info)")

    def _pcm_from_info(self, raw: bytes) -> tuple[np.ndarray, int]:
        info = self.current_info
        coding = (info.coding_format or "").lower()
        if coding == "mp3":
            return self._decode_mp3(raw)
        if coding not in _RAW_CODINGS:
            raise InputError(f"audio coding {info.coding_format!r} cannot be read; {DRIVER_HINT}")
        fmt = (info.sample_format or "").upper()
        if fmt not in _PCM_FORMATS:
            raise InputError(f"sample format {info.sample_format!r} unsupported; use one of {', '.join(_PCM_FORMATS)} "
                             "(audio_capture_node sample_format:=S16LE)")
        channels = int(info.channels)
        if channels < 1:
            raise InputError(f"AudioInfo says {channels} channels")
        width = 3 if fmt == "S24LE" else np.dtype(_PCM_FORMATS[fmt]).itemsize
        if not raw or len(raw) % (width * channels):
            raise InputError(f"audio chunk of {len(raw)} bytes is not a whole number of {fmt} x{channels} frames")
        if fmt == "S24LE":  # widen to int32 (low byte zero): same full scale as S32
            b = np.frombuffer(raw, np.uint8).reshape(-1, 3)
            data = (b[:, 0].astype(np.int32) << 8 | b[:, 1].astype(np.int32) << 16 | b[:, 2].astype(np.int8).astype(np.int32) << 24)
        else:
            data = np.frombuffer(raw, _PCM_FORMATS[fmt]).astype(np.dtype(_PCM_FORMATS[fmt]).newbyteorder("="))
        return _frames(data, channels, "AudioInfo"), check_rate(info.sample_rate)

    def _decode_mp3(self, raw: bytes) -> tuple[np.ndarray, int] | None:
        if self._mp3 is None:
            try:
                self._mp3 = _Mp3Stream()
            except ImportError:
                raise InputError(f"audio is mp3 and PyAV is not installed to decode it; {DRIVER_HINT}") from None
            self.notices.append(f"audio arrives as mp3: decoding it with PyAV (adds the encoder's delay); {DRIVER_HINT}")
        try:
            return self._mp3.decode(raw)
        except Exception as exc:  # noqa: BLE001 - PyAV raises its own error classes on corrupt data
            self._mp3 = None
            raise InputError(f"mp3 chunk could not be decoded ({type(exc).__name__}: {exc}); {DRIVER_HINT}") from None

    # ------------------------------------------------------------------ decoding
    def decode(self, msg, receive_time: float) -> AudioChunk | None:
        if self.info_type is not None and self.current_info is None:
            self._hold_until_info(msg, receive_time)
            return None
        if self.transport == "audio_common_stamped":
            pcm = self._pcm_from_info(bytes(msg.audio.data))
            stamp = self._header_stamp(msg)
        elif self.transport == "audio_common":
            pcm, stamp = self._pcm_from_info(bytes(msg.data)), None
        elif self.transport == "audio_stamped":
            pcm, stamp = self._mgonzs13(msg.audio), self._header_stamp(msg)
        else:
            pcm, stamp = (multiarray_samples(msg), self.declared_rate), None
        if pcm is None:
            return None
        samples, sr = pcm
        if stamp is None:
            stamp = self.arrivals.stamp(len(samples), sr, receive_time)
        elif self._mp3 is not None and self.previous_end is not None and abs(stamp - self.previous_end) < self.max_lag_s:
            # Decoded mp3 frames do not line up with the messages that carried their bytes; the
            # decoder's output is continuous, so it continues the previous chunk.
            stamp = self.previous_end
        chunk = AudioChunk(samples, sr, stamp, header_stamped=self.stamped)
        self.previous_end = chunk.t_first + chunk.duration
        return chunk

    @staticmethod
    def _header_stamp(msg) -> float:
        stamp = stamp_seconds(msg.header.stamp)
        if stamp == 0:
            raise InputError("audio message has a zero header stamp (capture time unknown): the publisher must stamp "
                             "its chunks, or use the unstamped transport")
        return stamp

    def _mgonzs13(self, audio) -> tuple[np.ndarray, int]:
        info = audio.info
        field = _PA_FORMATS.get(int(info.format))
        if field is None:
            name = _PA_NAMES.get(int(info.format), "unknown")
            raise InputError(f"AudioInfo.format {info.format} ({name}) unsupported; publish paInt16 (8) or paFloat32 (1)")
        data = np.asarray(getattr(audio.audio_data, field))
        return _frames(data, int(info.channels), "AudioInfo"), check_rate(info.rate)


class AudioEncoder:
    """The publishing side of a transport (mic_node, playback, tests): float32 frames -> messages."""

    def __init__(self, transport: str, sample_rate: int, channels: int = 1):
        self.transport = resolve_transport(transport)
        self.sample_rate, self.channels = int(sample_rate), int(channels)
        decoder = AudioDecoder(self.transport, sample_rate)
        self.msg_type, self.info_type, self.stamped = decoder.msg_type, decoder.info_type, decoder.stamped

    def info_msg(self):
        """ros-drivers AudioInfo for S16LE wave, as audio_capture_node with format:=wave sends it."""
        info = audio_msgs().AudioInfo()
        info.channels = self.channels
        info.sample_rate = self.sample_rate
        info.sample_format = "S16LE"
        info.coding_format = "wave"
        info.bitrate = self.sample_rate * self.channels * 16
        return info

    def encode(self, samples: np.ndarray, header):
        frames = np.asarray(samples, np.float32)
        frames = frames[:, None] if frames.ndim == 1 else frames
        if self.transport == "float32":
            return chunk_to_float32(frames)
        if self.transport == "int16":
            return chunk_to_int16(frames)
        msgs = audio_msgs()
        if self.transport == "audio_stamped":
            msg = msgs.AudioStamped()
            msg.header = header
            msg.audio.info.format, msg.audio.info.channels = 8, frames.shape[1]  # paInt16
            msg.audio.info.rate, msg.audio.info.chunk = self.sample_rate, len(frames)
            msg.audio.audio_data.int16_data = msg_array(float_to_s16(frames).ravel(), "h")
            return msg
        data = msgs.AudioData()
        data.data = msg_array(float_to_s16(frames).astype("<i2").ravel().view(np.uint8), "B")
        if self.transport == "audio_common":
            return data
        msg = msgs.AudioDataStamped()
        msg.header, msg.audio = header, data
        return msg
