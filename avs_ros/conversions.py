"""sensor_msgs images <-> numpy, validated.

Decoding uses cv_bridge when it imports (apt ROS installs), else ``rosbags.image``
(pure Python + OpenCV; works on rclpy messages). Both are imported on first use, not
at module import, so the node starts on a robot that has only one of them, and a
machine with neither gets an error naming both. Every message is checked against
its declared size first, so truncated or zero-size images become an InputError
the node can log, never a numpy crash or a silently wrong picture.
"""
from __future__ import annotations

import array
from functools import lru_cache
from types import SimpleNamespace

import numpy as np

from avs_core.errors import InputError
from avs_core.optional import MissingPackageError


@lru_cache(maxsize=1)
def _backend() -> tuple[str, object]:
    """("cv_bridge", CvBridge()) when cv_bridge imports, else ("rosbags.image", module)."""
    try:  # only importable in a sourced ROS install (and may be built against another numpy)
        from cv_bridge import CvBridge

        return "cv_bridge", CvBridge()
    except Exception:  # noqa: BLE001 - any import/ABI failure means "use the fallback"
        pass
    try:
        import rosbags.image as rosbags_image
    except ImportError:
        raise MissingPackageError(
            "decoding sensor_msgs images needs cv_bridge (apt install ros-$ROS_DISTRO-cv-bridge) "
            "or rosbags-image (pip install rosbags-image; in requirements.txt)") from None
    return "rosbags.image", rosbags_image


def backend() -> str:
    """Name of the image decoder in use: "cv_bridge" or "rosbags.image" (imports it on first call)."""
    return _backend()[0]


def _pixel_format(encoding: str) -> tuple[np.dtype, int]:
    """(numpy dtype, channels) of a sensor_msgs encoding, from the decoder in use."""
    name, impl = _backend()
    if name == "cv_bridge":
        dtype, channels = impl.encoding_to_dtype_with_channels(encoding)
    else:
        from rosbags.image.image import to_cvtype

        _, _, dtype, channels = to_cvtype(encoding)
    return np.dtype(dtype), int(channels)


# Encodings we turn into RGB. Bayer/YUV would work through the decoders too, but
# nobody should feed those to a segmenter without knowing: reject them clearly.
SUPPORTED_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "rgb16", "bgr16", "8UC3", "8UC1")
_AS_RGB = {"8UC3": "bgr8", "8UC1": "mono8"}  # OpenCV-style generic encodings: assume OpenCV's BGR order


def check_image_msg(msg) -> None:
    """Cheap header/size validation (no pixel access): raises InputError for unusable images.

    Run in the subscription callback so a malformed frame never displaces a good
    one waiting for the worker.
    """
    if hasattr(msg, "format"):  # CompressedImage: only the decoder can tell more
        if len(msg.data) == 0:
            raise InputError("compressed image has no data")
        return
    encoding = (msg.encoding or "").strip()
    if encoding not in SUPPORTED_ENCODINGS:
        raise InputError(f"unsupported image encoding {encoding!r}; expected one of {', '.join(SUPPORTED_ENCODINGS)}")
    if msg.width == 0 or msg.height == 0:
        raise InputError(f"zero-size image ({msg.width}x{msg.height})")
    row_bytes = _row_bytes(msg)
    if msg.step < row_bytes:
        raise InputError(f"image step {msg.step} is smaller than width*pixel size {row_bytes} ({encoding})")
    expected = msg.step * msg.height
    if len(msg.data) != expected:
        raise InputError(f"image data has {len(msg.data)} bytes, header says {expected} (step {msg.step} x height {msg.height})")


def _row_bytes(msg) -> int:
    dtype, channels = _pixel_format(msg.encoding.strip())
    return msg.width * channels * dtype.itemsize


def image_msg_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image -> HxWx3 uint8 RGB (a fresh array, safe to keep)."""
    check_image_msg(msg)
    encoding = msg.encoding.strip()
    name, impl = _backend()
    if name == "cv_bridge":  # handles row padding itself; reads only the message fields
        src = SimpleNamespace(encoding=_AS_RGB.get(encoding, encoding), width=msg.width, height=msg.height,
                              step=msg.step, is_bigendian=msg.is_bigendian, data=msg.data)
        out = impl.imgmsg_to_cv2(src, desired_encoding="rgb8")
    else:
        data, row_bytes = msg.data, _row_bytes(msg)
        if msg.step != row_bytes:  # row padding: keep only the pixels of each row
            data = np.frombuffer(data, np.uint8).reshape(msg.height, msg.step)[:, :row_bytes].tobytes()
        src = SimpleNamespace(encoding=_AS_RGB.get(encoding, encoding), width=msg.width, height=msg.height,
                              is_bigendian=msg.is_bigendian, data=data)
        out = impl.image_to_cvimage(src, "rgb8")
    return np.array(out, dtype=np.uint8, copy=True)


def compressed_msg_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg/png) -> HxWx3 uint8 RGB."""
    check_image_msg(msg)
    name, impl = _backend()
    try:
        if name == "cv_bridge":
            out = impl.compressed_imgmsg_to_cv2(msg, desired_encoding="rgb8")
        else:
            out = impl.compressed_image_to_cvimage(msg, "rgb8")
    except Exception as exc:  # noqa: BLE001 - decoders raise assorted errors (or assert) on corrupt data
        raise InputError(f"cannot decode compressed image (format {msg.format!r}): {type(exc).__name__}: {exc}") from None
    if out is None or out.size == 0:
        raise InputError(f"compressed image (format {msg.format!r}) decoded to nothing")
    return np.array(out, dtype=np.uint8, copy=True)


def msg_array(values: np.ndarray, typecode: str) -> array.array:
    """``values`` as the ``array.array`` a generated message setter stores as it is (one copy).

    Given bytes, a list or a numpy array, the setters of ROS message sequence fields check
    every element in Python where field checks are on (always on Humble): 57 ms for one
    640x480 rgb8 frame, against microseconds for an ``array.array`` of the field's type.
    """
    out = array.array(typecode)
    out.frombytes(memoryview(np.ascontiguousarray(values, dtype=np.dtype(typecode))).cast("B"))
    return out


def numpy_to_image_msg(pixels: np.ndarray, encoding: str, header, msg_type):
    """numpy -> sensor_msgs/Image with ``header`` copied (the source frame's stamp and frame_id)."""
    arr = np.ascontiguousarray(pixels)
    dtype, channels = _pixel_format(encoding)
    if arr.dtype != dtype or (arr.ndim == 2) != (channels == 1) or (arr.ndim == 3 and arr.shape[2] != channels):
        raise InputError(f"array {arr.dtype}{arr.shape} does not match encoding {encoding}")
    msg = msg_type()
    msg.header = header
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = False
    msg.step = int(arr.strides[0])
    msg.data = msg_array(arr.reshape(-1).view(np.uint8), "B")
    return msg


def rgb_to_compressed_msg(rgb: np.ndarray, header, msg_type, fmt: str = "jpeg"):
    """RGB -> sensor_msgs/CompressedImage (used by the demo/test publishers)."""
    import cv2

    ok, buf = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise InputError(f"OpenCV could not encode a {rgb.shape} image as {fmt}")
    msg = msg_type()
    msg.header = header
    msg.format = fmt
    msg.data = msg_array(buf.reshape(-1), "B")
    return msg


def stamp_seconds(stamp) -> float:
    """builtin_interfaces/Time -> float seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def to_stamp(seconds: float, msg_type):
    """float seconds -> builtin_interfaces/Time (``msg_type``), exact to the nanosecond."""
    sec, nanosec = divmod(int(round(seconds * 1e9)), 1_000_000_000)
    return msg_type(sec=sec, nanosec=nanosec)
