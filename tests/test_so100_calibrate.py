"""Camera calibration: a known synthetic camera is recovered (< 0.5 px), bad calibrations are refused."""
import json

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2", reason="OpenCV (so100 extra) is not installed: make test-so100")

from video_para.geometry import Camera  # noqa: E402
from video_para.so100.calibrate import (CalibrationError, extrinsics_from_points,  # noqa: E402
                                        intrinsics_from_checkerboards, load_calibration, main)

W, H = 640, 480
K_TRUE = np.array([[520.0, 0, 322.0], [0, 515.0, 236.0], [0, 0, 1]])
CAM = Camera.spherical([0.2, 0.0, 0.03], 0.55, 45.0, 30.0, K_TRUE, W, H)


def _workspace_points(n, seed=0):
    return np.random.default_rng(seed).uniform([0.1, -0.15, 0.0], [0.32, 0.15, 0.2], (n, 3))


def test_extrinsics_recover_a_known_camera_from_noisy_pixels():
    pts = _workspace_points(12)
    pix = CAM.project(pts) + np.random.default_rng(1).normal(0, 0.2, (12, 2))    # 0.2 px click noise
    cam, err = extrinsics_from_points(pts, pix, K_TRUE, W, H)
    assert err.mean() < 0.5
    truth = CAM.project(_workspace_points(200, seed=2))
    assert np.abs(cam.project(_workspace_points(200, seed=2)) - truth).max() < 1.0      # held-out points
    np.testing.assert_allclose(cam.world_from_cam[:3, 3], CAM.world_from_cam[:3, 3], atol=0.005)


def test_too_few_points_and_inconsistent_pairs_are_refused():
    pts = _workspace_points(12)
    pix = CAM.project(pts)
    with pytest.raises(CalibrationError, match="at least 6"):
        extrinsics_from_points(pts[:4], pix[:4], K_TRUE, W, H)
    bad = pix.copy()
    bad[[0, 5]] = bad[[5, 0]]                       # two clicks swapped
    bad[3] += [40, -25]                             # one wrong click
    with pytest.raises(CalibrationError, match="reprojection error"):
        extrinsics_from_points(pts, bad, K_TRUE, W, H)


def _board_image(K, R, t, pattern=(9, 6), square=0.025, px=40):
    """A checkerboard (pattern = inner corners) seen by a pinhole camera at board pose (R, t)."""
    cols, rows = pattern[0] + 1, pattern[1] + 1
    tex = ((np.indices((rows * px, cols * px)) // px).sum(0) % 2 * 255).astype(np.uint8)
    tex = np.pad(tex, px, constant_values=255)       # white border: the detector needs it
    s = square / px
    tex_to_board = np.array([[s, 0, -s * (2 * px - 0.5)], [0, s, -s * (2 * px - 0.5)], [0, 0, 1]])  # corner (0,0) at origin
    Hm = K @ np.c_[R[:, :2], t] @ tex_to_board
    Kcv = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])  # our pixel centres (+0.5) -> OpenCV's integers
    return cv2.warpPerspective(tex, Kcv @ Hm, (W, H), flags=cv2.INTER_AREA, borderValue=128)


def test_checkerboard_intrinsics_recover_k():
    rng = np.random.default_rng(0)
    images = []
    for _ in range(8):
        R, _ = cv2.Rodrigues(rng.uniform(-0.35, 0.35, 3))
        t = np.array([rng.uniform(-0.12, -0.04), rng.uniform(-0.1, -0.04), rng.uniform(0.45, 0.6)])
        images.append(_board_image(K_TRUE, R, t))
    K, rms, n = intrinsics_from_checkerboards(images, (9, 6), 0.025)
    assert n >= 6 and rms < 0.5
    np.testing.assert_allclose(K[[0, 1], [0, 1]], K_TRUE[[0, 1], [0, 1]], rtol=0.02)
    np.testing.assert_allclose(K[[0, 1], [2, 2]], K_TRUE[[0, 1], [2, 2]], atol=4.0)
    with pytest.raises(CalibrationError, match="found in"):
        intrinsics_from_checkerboards(images[:3], (9, 6), 0.025)


def test_cli_writes_a_json_deployment_reads_and_refuses_a_bad_one(tmp_path, capsys):
    (tmp_path / "intr.json").write_text(json.dumps({"K": K_TRUE.tolist(), "width": W, "height": H}))
    pts = _workspace_points(10)
    pairs = [{"xyz": p.tolist(), "pixel": u.tolist()} for p, u in zip(pts, CAM.project(pts))]
    (tmp_path / "pts.json").write_text(json.dumps({"pairs": pairs, "support": [{"xyz": [0.2, 0.0, 0.012]}]}))
    args = ["extrinsics", "--intrinsics", str(tmp_path / "intr.json"), "--points", str(tmp_path / "pts.json")]
    assert main([*args, "--out", str(tmp_path / "cam.json")]) == 0
    assert "reprojection error mean" in capsys.readouterr().out
    cam, support_z = load_calibration(tmp_path / "cam.json")
    assert support_z == pytest.approx(0.012)
    np.testing.assert_allclose(cam.project(pts), CAM.project(pts), atol=1e-3)
    (tmp_path / "pts.json").write_text(json.dumps({"pairs": pairs[:3], "support_z": 0.0}))
    assert main([*args, "--out", str(tmp_path / "bad.json")]) == 1
    assert "REFUSED" in capsys.readouterr().err and not (tmp_path / "bad.json").exists()
