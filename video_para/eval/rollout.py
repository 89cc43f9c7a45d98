"""Closed-loop rollouts of any policy in any env, one `select_action` per control tick.

A policy is a saved `Policy` or anything with `predict(image, camera, ee_pos, support_z) -> ActionChunk`
(an oracle, a scripted baseline; wrapped by models.policy.queued) and optionally `reset()`; its chunk
queue is reset before each episode with this rollout's `replan_every` (None: the policy's own, a saved
policy's `run.replan_every`, else 4). A prediction that cannot be executed (the EE left the image, a
pixel on the horizon) ends the episode as a failure with its reason recorded; it never crashes the run.
Grasps are counted with `Env.holding`, the final error is `Env.task_error`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from ..envs.base import Env
from ..models.policy import queued
from ..progress import progress
from .report import overlay


@dataclass
class EpisodeResult:
    spec: dict
    success: bool
    steps: int
    error: float = float("nan")          # final object-to-target distance (m), Env.task_error: NaN if untracked
    failure: str = ""                    # why a prediction could not be executed
    grasps: int | None = None            # times the object went into the gripper (None: the env cannot tell)
    video: str = ""
    overlay: str = ""                    # PNG of the first prediction's heatmaps and targets


@dataclass
class RolloutResult:
    episodes: list[EpisodeResult] = field(default_factory=list)

    @property
    def successes(self) -> int:
        return sum(e.success for e in self.episodes)

    @property
    def rate(self) -> float:
        return self.successes / max(1, len(self.episodes))


def rollout(policy, env: Env, specs: list[dict], replan_every: int | None = None, max_steps: int = 80, seed: int = 0,
            video_dir: Path | None = None, n_videos: int = 0, camera: str = "", desc: str = "rollout") -> RolloutResult:
    cam_name = camera or env.camera_names[0]
    agent, result = queued(policy), RolloutResult()
    bar = progress(specs, desc=desc)
    for i, spec in enumerate(bar):
        obs = env.reset(spec, seed + i)
        agent.reset(replan_every)
        frames, steps, failure = [], 0, ""
        holding = env.holding()
        grasps = None if holding is None else int(holding)
        record = video_dir is not None and i < n_videos
        while steps < max_steps and not env.success():
            try:
                action = agent.select_action({"image": obs.images[cam_name], "camera": obs.cameras[cam_name],
                                              "ee_pos": obs.ee_pos, "support_z": obs.support_z})
            except (ValueError, FloatingPointError) as e:
                failure = str(e).split(";")[0][:160]
                break
            if record:
                frames.append(overlay(obs.images[cam_name], agent.last_chunk.pixels, agent.last_chunk.heatmaps))
            obs = env.step(action[:3], float(action[3]))
            steps += 1
            if grasps is not None:
                now = env.holding()
                grasps += int(now and not holding)
                holding = now
        ep = EpisodeResult(spec, env.success(), steps, env.task_error(), failure, grasps)
        if record and frames:
            frames.append(overlay(obs.images[cam_name], None, None))
            video_dir.mkdir(parents=True, exist_ok=True)
            ep.video = str(video_dir / f"episode_{i:03d}.mp4")
            imageio.mimwrite(ep.video, frames, fps=8, macro_block_size=1)
            ep.overlay = str(video_dir / f"episode_{i:03d}.png")
            imageio.imwrite(ep.overlay, frames[0])
        result.episodes.append(ep)
        bar.set_postfix(success=f"{result.successes}/{i + 1}")
    return result
