"""Scripted expert for the tabletop task and demo generation over scene specs.

Waypoints: above the bowl rim -> down to grasp height -> close -> lift -> above the plate -> down ->
open -> retreat. The EE moves at most `max_step` per frame towards the next waypoint, so demos are
~40-60 frames; waypoints are jittered a little so that demos are not all identical.
"""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from ..data.episodes import CameraTrack, Episode
from .tabletop import TabletopEnv


def expert_waypoints(env: TabletopEnv, rng: np.random.Generator) -> list[tuple[np.ndarray, float]]:
    c = env.cfg
    top = env.bowl[2] + c.bowl_height
    bowl, plate = env.bowl[:2] + rng.normal(0, 0.004, 2), env.plate[:2] + rng.normal(0, 0.006, 2)
    lift = c.support_z + 0.16 + rng.uniform(-0.02, 0.02)
    return [(np.array([*bowl, top + 0.08]), 0.0), (np.array([*bowl, top - 0.015]), 0.0),
            (np.array([*bowl, top - 0.015]), 1.0), (np.array([*bowl, lift]), 1.0),
            (np.array([*plate, lift]), 1.0), (np.array([*plate, c.support_z + 0.07]), 1.0),
            (np.array([*plate, c.support_z + 0.07]), 0.0), (np.array([*plate, lift]), 0.0)]


def run_expert(env: TabletopEnv, spec: dict, seed: int, index: int = 0, max_step: float = 0.03,
               fps: float = 10.0) -> tuple[Episode, bool]:
    """Roll the expert out from `spec`; return the recorded episode and whether it succeeded."""
    rng = np.random.default_rng(seed)
    obs = env.reset(spec, seed)
    frames, ee, grip, actions, Ks, Ts = [], [], [], [], [], []

    def record(obs, action):
        cam = obs.cameras["front"]
        frames.append(obs.images["front"]); ee.append(obs.ee_pos); grip.append(obs.gripper)  # noqa: E702
        Ks.append(cam.K); Ts.append(cam.world_from_cam); actions.append(action)  # noqa: E702

    for target, g in expert_waypoints(env, rng):
        while True:
            delta = target - obs.ee_pos
            dist = np.linalg.norm(delta)
            step = obs.ee_pos + (delta if dist <= max_step else delta * max_step / dist)
            record(obs, [*step, g])
            obs = env.step(step, g)
            if dist <= max_step and obs.gripper == g:
                break
    record(obs, [*obs.ee_pos, obs.gripper])            # final frame: hold position
    T = len(frames)
    episode = Episode(index=index, task=env.task, fps=fps, timestamps=np.arange(T) / fps,
                      ee_pos=np.array(ee), gripper=np.array(grip, dtype=np.float64),
                      action=np.array(actions, dtype=np.float64), support_z=env.cfg.support_z,
                      cameras={"front": CameraTrack(np.stack(frames), np.stack(Ks), np.stack(Ts))},
                      meta={"spec": {k: (np.asarray(v).tolist()) for k, v in spec.items()}, "seed": seed})
    return episode.validate(), env.success()


def generate_demos(env: TabletopEnv, specs: list[dict], seed: int = 0, progress: bool = True) -> list[Episode]:
    """One successful expert demo per spec (a failed one is an error: the expert must be reliable)."""
    episodes = []
    for i, spec in enumerate(tqdm(specs, desc="expert demos", disable=not progress)):
        ep, ok = run_expert(env, spec, seed * 100003 + i, index=i)
        if not ok:
            raise RuntimeError(f"scripted expert failed on spec {spec} (seed {seed * 100003 + i})")
        episodes.append(ep)
    return episodes
