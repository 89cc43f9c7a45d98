"""Speed and convergence of the SO-100 control path: `python -m video_para.so100.bench [n]`.

Prints, over n random reachable targets (FK of random postures above the table) solved from the home
posture: our MuJoCo damped-least-squares IK (success within 1 mm, iterations, ms per solve), one
SafeIK command, one 128x128 render of the sim scene, and -- when placo is importable (LeRobot's IK
backend, `pip install placo`) -- placo's differential IK on the same model's URDF, iterated the same way.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from ..config import exit_if_help
from ..robots.so100.kinematics import ARM_JOINTS, HOME_JOINTS, ArmKinematics, bundled_model_path
from ..robots.so100.safety import SafeIK, SafetyConfig

HOME = np.array(HOME_JOINTS)


def targets(kin: ArmKinematics, n: int, seed: int = 0) -> np.ndarray:
    rng, out = np.random.default_rng(seed), []
    while len(out) < n:
        x = kin.fk(rng.uniform(kin.lower * 0.7, kin.upper * 0.7))
        if x[2] > 0.0:
            out.append(x)
    return np.array(out)


def placo_ik(urdf: Path, goals: np.ndarray, tolerance: float = 1e-3, iterations: int = 100):
    import placo                        # optional: LeRobot's kinematics backend
    robot = placo.RobotWrapper(str(urdf), placo.Flags.ignore_collisions)
    solver = placo.KinematicsSolver(robot)
    solver.mask_fbase(True)
    solver.enable_joint_limits(True)
    task = solver.add_position_task("gripper_frame_link", np.zeros(3))
    ok, its, t0 = 0, [], time.perf_counter()          # construction (URDF parsing) is not timed
    for goal in goals:
        for j, v in zip(ARM_JOINTS, np.radians(HOME)):
            robot.set_joint(j, v)
        robot.update_kinematics()
        task.target_world = goal
        for it in range(1, iterations + 1):
            if np.linalg.norm(robot.get_T_world_frame("gripper_frame_link")[:3, 3] - goal) <= tolerance:
                ok += 1
                break
            solver.solve(True)
            robot.update_kinematics()
        its.append(it)
    return ok, its, (time.perf_counter() - t0) / len(goals)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    exit_if_help(argv, "python -m video_para.so100.bench [n]", __doc__)
    n = int((argv or ["500"])[0])
    kin = ArmKinematics()
    goals = targets(kin, n)
    t0 = time.perf_counter()
    sols = [kin.ik(g, HOME) for g in goals]
    dt = (time.perf_counter() - t0) / n
    ok = sum(s.reached(1e-3) for s in sols)
    print(f"mujoco DLS IK: {ok}/{n} within 1 mm, median {np.median([s.iterations for s in sols]):.0f} iterations, "
          f"{dt * 1e3:.2f} ms/solve")
    safe = SafeIK(kin, SafetyConfig())
    t0 = time.perf_counter()
    for g in goals[:200]:
        safe.command(HOME, g, 0.0)
    print(f"SafeIK.command (clamp + IK + FK verification): {(time.perf_counter() - t0) / min(n, 200) * 1e3:.2f} ms")
    try:
        ok, its, per_solve = placo_ik(bundled_model_path().with_suffix(".urdf"), goals)
        print(f"placo IK (URDF): {ok}/{n} within 1 mm, median {np.median(its):.0f} iterations, "
              f"{per_solve * 1e3:.2f} ms/solve")
    except ImportError:
        print("placo IK: not installed (pip install placo to compare)")
    from ..envs.so100 import SO100SimConfig, SO100SimEnv
    env = SO100SimEnv(SO100SimConfig())
    env.render()
    t0 = time.perf_counter()
    for _ in range(20):
        env.render()
    print(f"so100_sim render 128x128: {(time.perf_counter() - t0) / 20 * 1e3:.0f} ms/frame")
    env.close()


if __name__ == "__main__":
    main()
