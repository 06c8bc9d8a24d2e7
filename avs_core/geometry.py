"""Camera model, array-to-camera transform, and sound directions as pixel likelihoods.

Frames: the camera *optical* frame is x right, y down, z forward (ROS REP-103 ``*_optical``
frames, OpenCV). Microphone arrays usually live in a *body* frame (x forward, y left,
z up). ``ArrayPose`` maps array-frame points into the optical frame: p_cam = R p_array + t.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import cv2
import numpy as np

from .audio.doa import DOAEstimate
from .config import load_yaml
from .errors import ConfigError, InputError

# Body (x forward, y left, z up) -> optical (x right, y down, z forward).
OPTICAL_FROM_BODY = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


@dataclass(frozen=True)
class CameraModel:
    """Pinhole intrinsics (+ optional plumb_bob / rational_polynomial distortion) of one image size."""

    width: int
    height: int
    K: np.ndarray
    D: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self):
        K = np.asarray(self.K, dtype=np.float64).reshape(3, 3)
        fx, fy = K[0, 0], K[1, 1]
        if not (np.all(np.isfinite(K)) and fx > 0 and fy > 0):
            raise ConfigError(f"camera intrinsics need positive focal lengths, got fx={fx}, fy={fy} "
                              "(an uncalibrated camera_info has K all zero: calibrate the camera)")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise ConfigError(f"camera image size must be positive, got {self.width}x{self.height}")
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "D", np.asarray(self.D, dtype=np.float64).ravel())
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    @classmethod
    def from_intrinsics(cls, k: Sequence[float], width: int, height: int, d: Sequence[float] = ()) -> "CameraModel":
        """From CameraInfo-style fields: row-major K (9 numbers), image size, distortion D."""
        k = np.asarray(k, dtype=np.float64)
        if k.size != 9:
            raise ConfigError(f"camera matrix K must have 9 entries, got {k.size}")
        return cls(int(width), int(height), k.reshape(3, 3), np.asarray(d, dtype=np.float64))

    @classmethod
    def from_yaml(cls, path: str | Path) -> "CameraModel":
        """ROS camera_calibration YAML: image_width, image_height, camera_matrix {rows, cols, data}."""
        data = load_yaml(path)
        try:
            cm = data["camera_matrix"]
            k = cm["data"] if isinstance(cm, Mapping) else cm
            dist = data.get("distortion_coefficients") or {}
            d = dist.get("data", []) if isinstance(dist, Mapping) else dist
            return cls.from_intrinsics(k, data["image_width"], data["image_height"], d or ())
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{path} is not a ROS camera_calibration file (image_width, image_height, "
                              f"camera_matrix: {{rows, cols, data}}): missing {exc}") from None

    def for_image(self, width: int, height: int) -> "CameraModel":
        """The model for a frame of this size: K scaled when the frame is a resized calibration image."""
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        if abs(sx - sy) > 0.01 * max(sx, sy):
            raise InputError(f"frame {width}x{height} does not match camera_info {self.width}x{self.height} "
                             "(different aspect ratio: crop/ROI is not supported)")
        K = self.K.copy()
        K[0] *= sx
        K[1] *= sy
        return CameraModel(width, height, K, self.D)

    def rays(self, stride: int = 1) -> np.ndarray:
        """Unit viewing rays (h, w, 3) in the optical frame for pixel centres every ``stride`` pixels."""
        us = np.arange(0, self.width, stride, dtype=np.float64)
        vs = np.arange(0, self.height, stride, dtype=np.float64)
        u, v = np.meshgrid(us, vs)
        pts = np.stack([u, v], axis=-1).reshape(-1, 1, 2)
        if self.D.size and np.any(self.D != 0):
            xy = cv2.undistortPoints(pts, self.K, self.D).reshape(-1, 2)
        else:
            xy = (pts.reshape(-1, 2) - self.K[:2, 2]) @ np.linalg.inv(self.K[:2, :2]).T
        rays = np.concatenate([xy, np.ones((len(xy), 1))], axis=1)
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
        return rays.reshape(len(vs), len(us), 3)

    def project(self, direction_optical: np.ndarray) -> tuple[float, float] | None:
        """Pixel (u, v) of a direction in the optical frame, or None when it points behind the camera."""
        d = np.asarray(direction_optical, dtype=np.float64)
        if d[2] <= 1e-6:
            return None
        uv, _ = cv2.projectPoints(d.reshape(1, 1, 3), np.zeros(3), np.zeros(3), self.K,
                                  self.D if self.D.size else None)
        return float(uv[0, 0, 0]), float(uv[0, 0, 1])


@dataclass(frozen=True)
class ArrayPose:
    """The array frame in the camera optical frame: p_optical = rotation @ p_array + translation."""

    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def __post_init__(self):
        R = np.asarray(self.rotation, dtype=np.float64).reshape(3, 3)
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0:
            raise ConfigError(f"array_to_camera rotation is not a proper rotation matrix:\n{R}")
        t = np.asarray(self.translation, dtype=np.float64).reshape(3)
        if not np.all(np.isfinite(t)):
            raise ConfigError(f"array_to_camera translation must be finite, got {t}")
        object.__setattr__(self, "rotation", R)
        object.__setattr__(self, "translation", t)

    @classmethod
    def from_quaternion(cls, xyzw: Sequence[float], translation: Sequence[float] = (0.0, 0.0, 0.0)) -> "ArrayPose":
        q = np.asarray(xyzw, dtype=np.float64)
        norm = np.linalg.norm(q)
        if q.size != 4 or not norm > 0:
            raise ConfigError(f"rotation quaternion must be [x, y, z, w] with non-zero norm, got {list(xyzw)}")
        x, y, z, w = q / norm
        R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                      [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                      [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
        return cls(R, np.asarray(translation, dtype=np.float64))

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> "ArrayPose":
        """``{rotation: body | optical | [x, y, z, w], translation: [x, y, z]}`` (metres, optical frame).

        ``body``: the array frame is x forward, y left, z up, aligned with the camera (a board
        lying flat under or beside the lens); ``optical``: the array frame is the optical frame.
        """
        cfg = dict(cfg or {})
        rot = cfg.get("rotation", "body")
        t = cfg.get("translation") or [0.0, 0.0, 0.0]
        if isinstance(t, (list, tuple)) and len(t) == 3:
            t = [float(v) for v in t]
        else:
            raise ConfigError(f"array_to_camera.translation must be [x, y, z] metres, got {t!r}")
        if rot == "body":
            return cls(OPTICAL_FROM_BODY, np.asarray(t))
        if rot == "optical":
            return cls(np.eye(3), np.asarray(t))
        if isinstance(rot, (list, tuple)) and len(rot) == 4:
            return cls.from_quaternion([float(v) for v in rot], t)
        raise ConfigError(f"array_to_camera.rotation must be body, optical or a quaternion [x, y, z, w], got {rot!r}")

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        """The camera's forward and image-up directions in the array frame."""
        return self.rotation.T @ np.array([0.0, 0.0, 1.0]), self.rotation.T @ np.array([0.0, -1.0, 0.0])


def angular_offset(est: DOAEstimate, directions: np.ndarray, forward: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Degrees between unit vectors (..., 3) (array frame) and the estimate, in what the array resolves.

    full: the angle between the directions; azimuth: the azimuth difference (a column band
    in the image); cone: the difference of angles to the linear array's axis.
    """
    if est.resolved == "full":
        return np.degrees(np.arccos(np.clip(directions @ est.direction, -1.0, 1.0)))
    if est.resolved == "azimuth":
        right = np.cross(forward, up)
        az = np.arctan2(directions @ right, directions @ forward)
        az0 = math.atan2(est.direction @ right, est.direction @ forward)
        return np.degrees(np.abs(np.angle(np.exp(1j * (az - az0)))))
    axis = est.axis
    return np.degrees(np.abs(np.arccos(np.clip(directions @ axis, -1, 1)) - math.acos(np.clip(est.direction @ axis, -1, 1))))


def offset_map(est: DOAEstimate, camera: CameraModel, pose: ArrayPose, source_distance_m: float = 2.0,
               stride: int = 4) -> np.ndarray:
    """Per-pixel angular offset (degrees, float32, camera size) between each pixel's ray and the estimate.

    A pixel's ray is followed to ``source_distance_m`` and seen from the array's origin, so an
    array mounted away from the lens (translation) still points at the right pixels.
    """
    rays = camera.rays(stride)
    pts = rays * float(source_distance_m) - pose.translation
    dirs = pts @ pose.rotation  # R^T p for each row vector: optical -> array frame
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    forward, up = pose.view()
    coarse = angular_offset(est, dirs, forward, up).astype(np.float32)
    return cv2.resize(coarse, (camera.width, camera.height), interpolation=cv2.INTER_LINEAR)


def likelihood(offset_deg: np.ndarray, sigma_deg: float) -> np.ndarray:
    """Gaussian likelihood in angle: 1 on the direction, exp(-1/2) one ``sigma_deg`` away."""
    return np.exp(-0.5 * np.square(offset_deg / float(sigma_deg))).astype(np.float32)
