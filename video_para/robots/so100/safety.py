"""The only road from a policy's world target to joint commands: clamp, limit, solve, verify.

    safe = SafeIK(ArmKinematics(...), SafetyConfig(...))
    cmd = safe.command(current_joints_deg, target_xyz, gripper)   # -> SafeCommand
    cmd.joints (5,) degrees, cmd.gripper in [0, 1], cmd.held, cmd.events

Order: a non-finite target or gripper holds; the target is clamped into the workspace box and moved
at most `max_ee_step` from the current EE; IK from the current joints; an unreachable target
(residual > `ik_tolerance`) holds; each joint moves at most `max_joint_step`. Finally the command is
VERIFIED by forward kinematics (finite, inside the joint limits, inside the box, within the step
limit); anything that fails holds the current joints. "Hold" never sends a NaN: if even the current
joints are invalid the command is the last verified one. The same object drives the simulated and
the real arm.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .kinematics import ArmKinematics


@dataclass
class SafetyConfig:
    workspace_min: list[float] = field(default_factory=lambda: [0.08, -0.25, 0.0])   # base frame, metres
    workspace_max: list[float] = field(default_factory=lambda: [0.40, 0.25, 0.30])
    max_ee_step: float = 0.04           # metres per command
    max_joint_step: float = 15.0        # degrees per command, per joint
    ik_tolerance: float = 0.005         # residual beyond which a target counts as unreachable (m)
    margin: float = 1e-3                # slack of the final verification (m)

    def validate(self) -> None:
        lo, hi = np.asarray(self.workspace_min), np.asarray(self.workspace_max)
        if lo.shape != (3,) or hi.shape != (3,) or not (lo < hi).all():
            raise ValueError(f"safety: workspace_min {self.workspace_min} must be below workspace_max "
                             f"{self.workspace_max} on every axis")
        if min(self.max_ee_step, self.max_joint_step, self.ik_tolerance) <= 0:
            raise ValueError("safety: max_ee_step, max_joint_step and ik_tolerance must be positive")


@dataclass
class SafeCommand:
    joints: np.ndarray          # (5,) degrees, verified
    gripper: float              # [0, 1], 0 open
    target: np.ndarray          # (3,) the EE position the joints reach (FK)
    held: bool = False          # the policy's target was refused; the arm holds
    events: list[str] = field(default_factory=list)   # what was clamped/limited/refused, for the log


class SafeIK:
    def __init__(self, kinematics: ArmKinematics, cfg: SafetyConfig):
        cfg.validate()
        self.kin, self.cfg = kinematics, cfg
        self.lo, self.hi = np.asarray(cfg.workspace_min, float), np.asarray(cfg.workspace_max, float)
        self._last: SafeCommand | None = None

    def reset(self) -> None:
        self._last = None

    def command(self, joints_deg, target_xyz, gripper: float) -> SafeCommand:
        q = np.asarray(joints_deg, dtype=np.float64).reshape(-1)
        if q.shape != (5,) or not np.isfinite(q).all():
            if self._last is None:
                raise ValueError(f"safety: the robot reports invalid joints {joints_deg} and there is no "
                                 "previous command to hold; refusing to move")
            return self._hold_last(f"invalid joint reading {np.round(q, 2).tolist()}")
        q_now = np.clip(q, self.kin.lower, self.kin.upper)
        ee_now = self.kin.fk(q_now)
        events: list[str] = []
        g = float(gripper) if np.isscalar(gripper) or np.size(gripper) == 1 else np.nan
        if not np.isfinite(g):
            g = self._last.gripper if self._last is not None else 0.0
            events.append("non-finite gripper: kept")
        g = float(np.clip(g, 0.0, 1.0))
        target = np.asarray(target_xyz, dtype=np.float64).reshape(-1)
        if target.shape != (3,) or not np.isfinite(target).all():
            return self._remember(SafeCommand(q_now, g, ee_now, True, events + [f"non-finite target {target_xyz}: hold"]))

        clamped = np.clip(target, self.lo, self.hi)
        if not np.allclose(clamped, target):
            events.append("target clamped to the workspace")
        step = clamped - ee_now
        dist = float(np.linalg.norm(step))
        if dist > self.cfg.max_ee_step:
            clamped = ee_now + step * (self.cfg.max_ee_step / dist)
            events.append(f"EE step {dist:.3f} m limited to {self.cfg.max_ee_step} m")

        sol = self.kin.ik(clamped, q_now)
        if not sol.reached(self.cfg.ik_tolerance):
            return self._remember(SafeCommand(q_now, g, ee_now, True,
                                              events + [f"unreachable target (IK residual {sol.error:.3f} m): hold"]))
        dq = sol.joints - q_now
        if np.abs(dq).max() > self.cfg.max_joint_step:
            dq = np.clip(dq, -self.cfg.max_joint_step, self.cfg.max_joint_step)
            events.append("joint step limited")
        q_cmd = np.clip(q_now + dq, self.kin.lower, self.kin.upper)
        ee_cmd = self.kin.fk(q_cmd)
        problem = self.violation(q_now, q_cmd, ee_now, ee_cmd)
        if problem:
            return self._remember(SafeCommand(q_now, g, ee_now, True, events + [f"verification failed ({problem}): hold"]))
        return self._remember(SafeCommand(q_cmd, g, ee_cmd, False, events))

    def violation(self, q_now, q_cmd, ee_now, ee_cmd) -> str:
        """Why a command breaks a limit ('' when it does not); the fuzz test checks with this too."""
        c, m = self.cfg, self.cfg.margin
        if not (np.isfinite(q_cmd).all() and np.isfinite(ee_cmd).all()):
            return "non-finite"
        if (q_cmd < self.kin.lower - 1e-6).any() or (q_cmd > self.kin.upper + 1e-6).any():
            return "joint limit"
        if np.abs(q_cmd - q_now).max() > c.max_joint_step + 1e-6:
            return "joint step"
        if (ee_cmd < self.lo - m).any() or (ee_cmd > self.hi + m).any():
            return "outside the workspace"
        if np.linalg.norm(ee_cmd - ee_now) > c.max_ee_step + m:
            return "EE step"
        return ""

    def _remember(self, cmd: SafeCommand) -> SafeCommand:
        self._last = cmd
        return cmd

    def _hold_last(self, why: str) -> SafeCommand:
        last = self._last
        return SafeCommand(last.joints.copy(), last.gripper, last.target.copy(), True, [f"{why}: hold last command"])
