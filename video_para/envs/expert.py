"""Scripted-expert demos for any env: walk the env's own `expert_waypoints` at a bounded speed.

The EE moves at most `max_step` per frame towards the next waypoint (the gripper changes on its own
frame), and every frame of every camera is recorded with its calibration, so the same recorder serves
the built-in scene, LIBERO and the SO-100 simulation.
"""
from __future__ import annotations

import numpy as np

from ..episodes import CameraTrack, Episode
from ..progress import progress as show
from .base import Env


def pick_and_place(grasp, approach_z: float, lift_z: float, place_xy, place_z: float):
    """The eight waypoints every env's expert walks: above the object -> down to `grasp` -> close ->
    lift -> over the target -> down -> open -> up. `place_xy` may be a callable, evaluated once the
    object is lifted (LIBERO measures the object's offset in the hand after the grasp)."""
    grasp = np.asarray(grasp, dtype=np.float64)
    yield np.r_[grasp[:2], approach_z], 0.0
    yield grasp, 0.0
    yield grasp, 1.0
    yield np.r_[grasp[:2], lift_z], 1.0
    over = place_xy() if callable(place_xy) else place_xy
    yield np.r_[over, lift_z], 1.0
    yield np.r_[over, place_z], 1.0
    yield np.r_[over, place_z], 0.0
    yield np.r_[over, lift_z], 0.0


def run_expert(env: Env, spec: dict, seed: int, index: int = 0, max_step: float = 0.03,
               max_frames: int = 1000) -> tuple[Episode, bool]:
    """Roll the expert out from `spec`; return the recorded episode and whether it succeeded. A waypoint
    the EE cannot reach (IK leaves the closest pose) would loop forever: `max_frames` stops it."""
    rng = np.random.default_rng(seed)
    obs = env.reset(spec, seed)
    ee, grip, actions = [], [], []
    frames, Ks, Ts, masks = ({name: [] for name in env.camera_names} for _ in range(4))

    def record(obs, action):
        ee.append(obs.ee_pos); grip.append(obs.gripper); actions.append(action)  # noqa: E702
        for name in env.camera_names:
            frames[name].append(obs.images[name]); Ks[name].append(obs.cameras[name].K)  # noqa: E702
            Ts[name].append(obs.cameras[name].world_from_cam)
            if obs.masks is not None and name in obs.masks:     # robot masks, when the env renders them
                masks[name].append(obs.masks[name])

    for target, g in env.expert_waypoints(rng):
        while True:
            delta = target - obs.ee_pos
            dist = np.linalg.norm(delta)
            step = obs.ee_pos + (delta if dist <= max_step else delta * max_step / dist)
            record(obs, [*step, g])
            if len(ee) > max_frames:
                raise RuntimeError(f"scripted expert: waypoint {np.round(target, 3).tolist()} (gripper {g}) not "
                                   f"reached after {max_frames} frames on spec {spec} (seed {seed})")
            obs = env.step(step, g)
            if dist <= max_step and obs.gripper == g:
                break
    record(obs, [*obs.ee_pos, obs.gripper])            # final frame: hold position
    T = len(ee)
    episode = Episode(index=index, task=env.task, fps=env.fps, timestamps=np.arange(T) / env.fps,
                      ee_pos=np.array(ee), gripper=np.array(grip, dtype=np.float64),
                      action=np.array(actions, dtype=np.float64), support_z=obs.support_z,
                      cameras={n: CameraTrack(np.stack(frames[n]), np.stack(Ks[n]), np.stack(Ts[n]),
                                              np.stack(masks[n]) if masks[n] else None)
                               for n in env.camera_names},
                      meta={"spec": {k: (np.asarray(v).tolist()) for k, v in spec.items()}, "seed": seed})
    return episode.validate(), env.success()


def generate_demos(env: Env, specs: list[dict], seed: int = 0, progress: bool = True,
                   attempts: int = 3) -> list[Episode]:
    """One successful expert demo per spec. The expert's noise (grasp point, lift height, place point) comes
    from the demo's seed; on a rare draw a physical release misses (LIBERO: the bowl came to rest on the
    plate's rim, seed 100022), so a failed demo is re-run with the next seeds of the same spec, printed and
    recorded in the episode's meta `seed`. Demos that succeed first time are unchanged; failing `attempts`
    times is an error naming the spec and the seeds tried."""
    episodes = []
    for i, spec in enumerate(show(specs, desc="expert demos", disable=not progress)):
        tried = []
        for k in range(attempts):
            demo_seed = seed * 100003 + i + k * RETRY_SEED_STRIDE
            ep, ok = run_expert(env, spec, demo_seed, index=i)
            if ok:
                break
            tried.append(demo_seed)
            print(f"[expert] demo {i}: failed on spec {spec} with seed {demo_seed}"
                  + ("; trying the next seed" if k + 1 < attempts else ""))
        else:
            raise RuntimeError(f"scripted expert failed {attempts} times on spec {spec} (seeds {tried})")
        episodes.append(ep)
    return episodes


RETRY_SEED_STRIDE = 1_000_003       # retry k of a demo uses its first seed + k * this (fixed: demos stay reproducible)
