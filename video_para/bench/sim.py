"""Built-in tabletop scene: rendered env steps per second (one process) and expert demo time."""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ..envs import ENVS
from ..envs.expert import run_expert
from ..envs.tabletop import TabletopConfig


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m video_para.bench sim")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--demos", type=int, default=10)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    env = ENVS.build(TabletopConfig(image_height=a.size, image_width=a.size))
    rng = np.random.default_rng(0)
    env.reset({"bowl_xy": [0.0, 0.1], "distractors": [[0.1, -0.2], [-0.15, 0.2]]})
    targets = rng.uniform([-0.2, -0.25, 0.03], [0.2, 0.25, 0.25], (a.steps, 3))
    t0 = time.perf_counter()
    for x in targets:
        env.step(x, 0.0)
    dt = time.perf_counter() - t0
    print(f"tabletop {a.size}x{a.size}: {a.steps / dt:.0f} rendered steps/s ({dt / a.steps * 1e3:.2f} ms/step, "
          "1 process, numpy threads as configured)")
    t0, ok, frames = time.perf_counter(), 0, 0
    for i in range(a.demos):
        ep, s = run_expert(env, {"bowl_xy": rng.uniform([-0.2, -0.3], [0.19, 0.3]).tolist()}, seed=i)
        ok, frames = ok + s, frames + len(ep)
    dt = time.perf_counter() - t0
    print(f"expert: {ok}/{a.demos} successes, {frames / a.demos:.0f} frames/demo, {dt / a.demos * 1e3:.0f} ms/demo")
