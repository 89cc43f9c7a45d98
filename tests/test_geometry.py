import math
import warnings

import numpy as np
import pytest
import torch

from video_para.geometry import Bins, Camera, switch_mujoco_axes


def random_camera(rng, far=False):
    K = Camera.intrinsics(rng.uniform(30, 90), 160, 120)
    radius = rng.uniform(20, 50) if far else rng.uniform(0.5, 2.0)
    return Camera.spherical(rng.uniform(-0.2, 0.2, 3), radius, rng.uniform(15, 85), rng.uniform(0, 360), K, 160, 120)


@pytest.mark.parametrize("far", [False, True])
def test_project_lift_round_trip_numpy_and_torch(far):
    rng = np.random.default_rng(0)
    for _ in range(20):
        cam = random_camera(rng, far)
        pts = rng.uniform(-0.3, 0.3, (7, 3))
        pts[:, 2] = rng.uniform(0.0, 0.25, 7)
        support = rng.uniform(-0.1, 0.1)
        pts[:, 2] += support
        pix = cam.project(pts)
        back = cam.lift(pix, pts[:, 2] - support, support_z=support)
        assert np.abs(back - pts).max() < 1e-8 * (1 + far * 1e3)
        ct = cam.torch(torch.float64)
        back_t = ct.lift(ct.project(torch.tensor(pts)), torch.tensor(pts[:, 2] - support), support)
        assert isinstance(back_t, torch.Tensor)
        np.testing.assert_allclose(back_t.numpy(), back, atol=1e-9)


def test_batched_cameras_match_single():
    rng = np.random.default_rng(1)
    cams = [random_camera(rng) for _ in range(4)]
    batched = Camera(np.stack([c.K for c in cams]), np.stack([c.world_from_cam for c in cams]), 160, 120)
    pts = rng.uniform(-0.2, 0.2, (4, 5, 3))
    pix = batched.project(pts)
    for i, c in enumerate(cams):
        np.testing.assert_allclose(pix[i], c.project(pts[i]), atol=1e-10)
    np.testing.assert_allclose(batched.lift(pix, pts[..., 2]), pts, atol=1e-9)


def test_pixel_centre_convention_and_principal_point():
    cam = Camera.look_at([0, 0, 2.0], [0, 0, 0], Camera.intrinsics(60, 128, 96), 128, 96)
    # the optical axis hits the principal point (W/2, H/2): the corner between the 4 central pixels
    np.testing.assert_allclose(cam.project(np.zeros(3)), [64.0, 48.0], atol=1e-12)
    # looking straight down along up=+z, look_at picks image-right = world +x (OpenCV: x right)
    right = cam.project(np.array([0.1, 0.0, 0.0]))
    f = cam.K[0, 0]
    np.testing.assert_allclose(right, [64 + f * 0.1 / 2.0, 48.0], atol=1e-9)
    pts = np.array([[0.1, 0.05, 0.0]])
    assert cam.world_to_cam(pts)[0, 2] == pytest.approx(2.0)


def test_horizon_and_behind_errors():
    cam = Camera.look_at([0, -2, 0.5], [0, 0, 0.5], Camera.intrinsics(60, 100, 100), 100, 100)  # horizontal axis
    with pytest.raises(ValueError, match="parallel"):
        cam.lift(np.array([[50.0, 50.0]]), np.array([0.0]))          # principal ray is horizontal
    with pytest.raises(ValueError, match="behind the camera"):
        cam.lift(np.array([[50.0, 10.0]]), np.array([0.0]))           # above the horizon
    with pytest.raises(ValueError, match="behind the camera"):
        cam.project(np.array([[0.0, -3.0, 0.5]]))
    down = cam.lift(np.array([[50.0, 90.0]]), np.array([0.0]))        # below the horizon: fine
    assert down[0, 2] == pytest.approx(0.0)


def test_non_rigid_extrinsics_rejected():
    T = np.eye(4)
    T[0, 0] = 2.0
    with pytest.raises(ValueError, match="rigid"):
        Camera(np.eye(3), T, 10, 10)


def test_orbit_keeps_target_centred_and_distance():
    K = Camera.intrinsics(50, 128, 128)
    base = Camera.spherical([0.1, 0.0, 0.05], 1.3, 40, 180, K, 128, 128)
    for theta, phi in [(0, 0), (0, 135), (12.5, 45), (25, 315)]:
        cam = base.orbit([0.1, 0.0, 0.05], theta, phi)
        np.testing.assert_allclose(cam.project(np.array([0.1, 0.0, 0.05])), [64, 64], atol=1e-9)
        eye = cam.world_from_cam[:3, 3]
        assert np.linalg.norm(eye - [0.1, 0.0, 0.05]) == pytest.approx(1.3)
        angle = math.degrees(math.acos(np.clip(cam.world_from_cam[:3, 2] @ base.world_from_cam[:3, 2], -1, 1)))
        assert angle == pytest.approx(theta, abs=1e-6)
    # the line of sight tilts towards direction phi of the base image plane (+x right, +y down)
    R0 = base.world_from_cam[:3, :3]
    for phi in (0, 90, 135, 270):
        dz = base.orbit([0.1, 0.0, 0.05], 5, phi).world_from_cam[:3, 2] - R0[:, 2]
        expected = math.sin(math.radians(5)) * np.array([math.cos(math.radians(phi)), math.sin(math.radians(phi))])
        np.testing.assert_allclose([dz @ R0[:, 0], dz @ R0[:, 1]], expected, atol=1e-12)


def test_scaled_and_cropped_cameras_stay_consistent():
    rng = np.random.default_rng(2)
    cam = random_camera(rng)
    pts = rng.uniform(-0.2, 0.2, (10, 3))
    pix = cam.project(pts)
    np.testing.assert_allclose(cam.scaled(0.5, 0.5, 80, 60).project(pts), pix * 0.5, atol=1e-9)
    np.testing.assert_allclose(cam.cropped(10, 20, 100, 80).project(pts), pix - [10, 20], atol=1e-9)
    d = cam.to_dict()
    np.testing.assert_allclose(Camera.from_dict(d).project(pts), pix)
    with pytest.raises(KeyError, match="world_from_cam"):
        Camera.from_dict({"K": d["K"], "width": 1, "height": 1})


def test_bins_encode_decode_and_counted_clipping():
    b = Bins(0.0, 0.32, 32)
    v = np.array([0.0, 0.005, 0.0101, 0.3199])
    np.testing.assert_array_equal(b.encode(v), [0, 0, 1, 31])
    np.testing.assert_allclose(b.decode(b.encode(v)), [0.005, 0.005, 0.015, 0.315])
    assert np.abs(b.decode(b.encode(v)) - v).max() <= b.width / 2 + 1e-12
    with pytest.warns(UserWarning, match="2 value"):
        idx = b.encode(torch.tensor([-1.0, 0.1, 5.0]))
    assert idx.tolist() == [0, 10, 31] and b.clipped == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b.encode(np.linspace(0, 0.32, 50))   # in range: no warning
    with pytest.raises(ValueError):
        Bins(1.0, 1.0, 4)


def test_mujoco_axes_switch_is_its_own_inverse_and_keeps_the_viewing_direction():
    cam = Camera.look_at([0.5, -0.4, 0.6], [0.0, 0.0, 0.0], np.eye(3), width=4, height=4)
    R = cam.world_from_cam[:3, :3]
    R_mj = switch_mujoco_axes(R)
    np.testing.assert_allclose(switch_mujoco_axes(R_mj), R)
    np.testing.assert_allclose(-R_mj[:, 2], R[:, 2])        # MuJoCo looks along its -z, OpenCV along +z
    np.testing.assert_allclose(-R_mj[:, 1], R[:, 1])        # MuJoCo's y is up, OpenCV's down
    assert np.linalg.det(R_mj) > 0
