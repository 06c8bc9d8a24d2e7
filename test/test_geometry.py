"""Camera model, array pose and the projection of a sound direction into the image (avs_core.geometry)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from avs_core.audio.doa import DOAEstimate, MicArray, view_angles
from avs_core.errors import ConfigError, InputError
from avs_core.geometry import OPTICAL_FROM_BODY, ArrayPose, CameraModel, likelihood, offset_map

CAMERA_YAML = Path(__file__).parent / "fixtures" / "doa" / "camera_640x480.yaml"
FX = 500.0  # the fixture's focal length, cx = 320, cy = 240


def pinhole(width=640, height=480) -> CameraModel:
    return CameraModel.from_intrinsics([FX, 0, width / 2, 0, FX, height / 2, 0, 0, 1], width, height)


def az_estimate(azimuth_deg: float, pose: ArrayPose) -> DOAEstimate:
    """An azimuth-only estimate (flat board) pointing azimuth_deg right of the camera axis."""
    a = math.radians(azimuth_deg)
    d = pose.rotation.T @ np.array([math.sin(a), 0.0, math.cos(a)])
    return DOAEstimate(d, 0.9, "azimuth", pose.rotation.T @ np.array([0.0, -1.0, 0.0]), azimuth_deg, None)


def test_camera_from_ros_calibration_yaml():
    cam = CameraModel.from_yaml(CAMERA_YAML)
    assert (cam.width, cam.height) == (640, 480)
    assert cam.K[0, 0] == 500.0 and cam.K[1, 2] == 240.0 and cam.D.shape == (5,)


def test_zero_focal_length_is_rejected(tmp_path):
    bad = tmp_path / "uncalibrated.yaml"
    bad.write_text(CAMERA_YAML.read_text().replace("data: [500.0, 0.0, 320.0, 0.0, 500.0", "data: [0.0, 0.0, 320.0, 0.0, 0.0"))
    with pytest.raises(ConfigError, match="positive focal lengths"):
        CameraModel.from_yaml(bad)
    with pytest.raises(ConfigError, match="positive focal lengths"):
        CameraModel.from_intrinsics([0.0] * 9, 640, 480)  # an uncalibrated CameraInfo
    with pytest.raises(ConfigError, match="not a ROS camera_calibration"):
        (tmp_path / "x.yaml").write_text("image_width: 640\n")
        CameraModel.from_yaml(tmp_path / "x.yaml")


def test_rays_and_projection_are_inverse_with_distortion():
    cam = CameraModel.from_yaml(CAMERA_YAML)
    rays = cam.rays(stride=40)
    for (v, u) in [(0, 0), (6, 8), (11, 15), (3, 12)]:
        uv = cam.project(rays[v, u])
        assert uv == pytest.approx((u * 40, v * 40), abs=0.05)
    assert cam.project(np.array([0.0, 0.0, -1.0])) is None  # behind the camera


def test_pinhole_ray_angles_match_focal_length():
    cam = pinhole()
    rays = cam.rays()
    # Column 320 + fx tan(25 deg) looks 25 degrees right of the optical axis.
    u = int(round(320 + FX * math.tan(math.radians(25.0))))
    az = math.degrees(math.atan2(rays[240, u, 0], rays[240, u, 2]))
    assert az == pytest.approx(25.0, abs=0.1)


def test_frame_resized_from_calibration_scales_intrinsics():
    cam = CameraModel.from_yaml(CAMERA_YAML).for_image(320, 240)
    assert cam.K[0, 0] == 250.0 and cam.K[0, 2] == 160.0
    with pytest.raises(InputError, match="aspect ratio"):
        CameraModel.from_yaml(CAMERA_YAML).for_image(640, 360)


def test_body_pose_view_axes():
    forward, up = ArrayPose.from_config({"rotation": "body"}).view()
    np.testing.assert_allclose(forward, [1, 0, 0], atol=1e-12)  # REP-103: x forward, z up
    np.testing.assert_allclose(up, [0, 0, 1], atol=1e-12)
    # ROS publishes camera_link -> camera_optical_frame as rpy (-pi/2, 0, -pi/2) = q [-0.5, 0.5, -0.5, 0.5]:
    # it maps optical-frame points into the body frame, i.e. the inverse of OPTICAL_FROM_BODY.
    q = ArrayPose.from_quaternion([-0.5, 0.5, -0.5, 0.5])
    np.testing.assert_allclose(q.rotation.T, OPTICAL_FROM_BODY, atol=1e-12)
    with pytest.raises(ConfigError):
        ArrayPose(np.diag([1.0, 1.0, -1.0]))  # a reflection is not a pose


def test_azimuth_only_direction_is_a_column_band():
    pose = ArrayPose.from_config({"rotation": "body"})
    off = offset_map(az_estimate(25.0, pose), pinhole(), pose)
    u = 320 + FX * math.tan(math.radians(25.0))
    cols = off.argmin(axis=1)
    assert np.all(np.abs(cols - u) <= 4)  # every row's minimum at the same column: a band
    lik = likelihood(off, 8.0)
    assert lik[:, int(round(u))].min() > 0.95 and lik[:, 100].max() < 0.01  # 100 px is ~ -31 degrees


def test_elevation_estimate_is_a_blob():
    pose = ArrayPose.from_config({"rotation": "optical"})
    d = np.array([math.sin(math.radians(20)), -math.sin(math.radians(10)), 0.0])
    d[2] = math.sqrt(1 - d @ d)
    est = DOAEstimate(d, 0.9, "full", None, 20.0, 10.0)
    off = offset_map(est, pinhole(), pose)
    v, u = np.unravel_index(np.argmin(off), off.shape)
    expected = pinhole().project(d)
    assert abs(u - expected[0]) <= 4 and abs(v - expected[1]) <= 4
    assert off[int(expected[1]), 0] > 20 and off[0, int(expected[0])] > 5  # falls off along rows and columns


def test_array_offset_from_the_lens_is_compensated():
    # Array 0.5 m right of the camera; the source 2 m straight ahead of the camera is seen by the
    # array at atan(0.5 / 2) = 14 degrees to the left, and must still land on the image centre.
    pose = ArrayPose.from_config({"rotation": "body", "translation": [0.5, 0.0, 0.0]})
    off = offset_map(az_estimate(-math.degrees(math.atan2(0.5, 2.0)), pose), pinhole(), pose, source_distance_m=2.0)
    assert abs(int(off[240].argmin()) - 320) <= 4


def test_view_angles_of_the_optical_frame():
    f, u = np.array([0.0, 0.0, 1.0]), np.array([0.0, -1.0, 0.0])
    az, el = view_angles(np.array([math.sin(0.3), 0.0, math.cos(0.3)]), f, u)
    assert az == pytest.approx(math.degrees(0.3)) and el == pytest.approx(0.0)
    # A flat board's plane normal is the view's up: it resolves azimuth only.
    board = MicArray.from_config("respeaker_4mic")
    rank, normal = board.shape()
    assert rank == 2 and abs(normal @ np.array([0, 0, 1.0])) == pytest.approx(1.0)
