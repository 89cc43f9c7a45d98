"""The one inverse-kinematics solver on MuJoCo models: iterated damped least squares on `mj_jacSite`.

Used by the LIBERO teleport (full pose of the Panda's grip site) and the SO-100 arm (position plus a
soft "gripper points down" posture in the position task's null space). MuJoCo is imported when a
solve runs, so that configs and envs import without the simulator extras.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SiteIK:
    """The joints (qpos addresses `qadr`, dof addresses `dadr`, limits in radians) that move `site`."""
    model: object
    data: object
    site: int
    qadr: np.ndarray
    dadr: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def solve(self, q, target, R_target=None, *, iterations: int, damping: float, tolerance: float,
              rot_tolerance: float = 1e-4, down: tuple[int, float] | None = None, max_step: float = np.inf,
              release_limits: bool = False) -> tuple[np.ndarray, float, int]:
        """Joint angles (rad) from `q` that put the site at `target` (and its frame at `R_target`).

        `damping` is added to J Jᵀ. `down` = (site axis, weight in m/rad): that axis is pulled towards
        world -z in the position task's null space (never at the cost of position). `max_step` caps
        each iteration's joint change (rad); with `release_limits` a joint at a limit that the step
        pushes outwards drops out of the step. Every iterate is clipped to the limits, so an
        unreachable target leaves the closest posture found. Returns (q, position error of the last
        evaluated iterate, iterations); `data` is left at that iterate's kinematics."""
        import mujoco                   # already imported (with its GL backend) by whoever built the model
        m, d, site = self.model, self.data, self.site
        jp, jr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        target = np.asarray(target, dtype=np.float64)
        q, err, it = np.asarray(q, dtype=np.float64), np.inf, 0
        for it in range(1, iterations + 1):
            d.qpos[self.qadr] = q
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            R = d.site_xmat[site].reshape(3, 3)
            e = target - d.site_xpos[site]
            err = float(np.linalg.norm(e))
            if R_target is not None:
                e = np.r_[e, 0.5 * np.cross(R, R_target, axis=0).sum(1)]
            if err <= tolerance and (R_target is None or np.linalg.norm(e[3:]) <= rot_tolerance):
                break
            mujoco.mj_jacSite(m, d, jp, jr, site)
            Jp, Jr = jp[:, self.dadr], jr[:, self.dadr]
            J = Jp if R_target is None else np.vstack([Jp, Jr])
            free = np.ones(len(q), dtype=bool)
            for _ in range(2 if release_limits else 1):
                dq = _task_priority_step(J * free, e, damping, _posture(R, Jr * free, down))
                blocked = ((q <= self.lower + 1e-9) & (dq < 0)) | ((q >= self.upper - 1e-9) & (dq > 0))
                if not release_limits or not (blocked & free).any():
                    break
                free &= ~blocked
            dq *= min(1.0, max_step / max(np.abs(dq).max(), 1e-12))
            q = np.clip(q + dq, self.lower, self.upper)
        return q, err, it


def _posture(R, Jr, down):
    """(Jacobian, error) of the soft "site axis points down" task; roll about that axis is free."""
    if down is None:
        return None
    axis, weight = R[:, down[0]], down[1]
    return (weight * (np.eye(3) - np.outer(axis, axis)) @ Jr,
            weight * np.cross(axis, np.array([0.0, 0.0, -1.0])))


def _task_priority_step(J, e, damping, secondary=None) -> np.ndarray:
    """Damped least squares on the primary task (J, e), then the secondary (Js, es) only in its null
    space, so that the secondary never costs the primary's accuracy."""
    n = J.shape[1]
    J_pinv = J.T @ np.linalg.inv(J @ J.T + damping * np.eye(len(e)))
    dq = J_pinv @ e
    if secondary is None:
        return dq
    Js, es = secondary
    JsN = Js @ (np.eye(n) - J_pinv @ J)
    return dq + JsN.T @ np.linalg.solve(JsN @ JsN.T + damping * np.eye(len(es)), es - Js @ dq)
