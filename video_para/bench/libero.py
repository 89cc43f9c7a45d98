"""LIBERO demo generation and rollouts: where the time goes (needs the libero extra and MUJOCO_GL).

One env of an experiment's config (default libero_tiny_para: 128x128 agentview) runs N expert demos on
the protocol's training scenes, then closed-loop rollouts of that experiment's policy, random-init
(timing only), on its test scenes. The env's parts are timed by wrapping them: each line is one part's
own time (time spent in the other timed parts it calls is theirs), its calls, ms per call and share of
the phase's wall time; `other` is the rest (the expert's plan and recording, rollout glue).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from contextlib import contextmanager

import torch

from ..config import load_config
from ..envs import ENVS
from ..envs.expert import run_expert
from ..eval.rollout import rollout
from ..experiment import ExperimentConfig
from ..models import Policy, Stats
from ..scenes import load_protocol, specs

STATS = Stats(0.0, 0.3, 0.0, 1.0, [0.0, 0.0, 0.1], [0.2, 0.2, 0.1], 0.5, 0.5)   # random init: any ranges


class Timer:
    """Exclusive wall time per (key, name): a timed call inside another is subtracted from the outer one.
    `key` tags what is timed now (the setting of an --alternate run)."""

    def __init__(self):
        self.key, self.seconds, self.calls, self._inner = None, defaultdict(float), Counter(), []

    @contextmanager
    def __call__(self, name: str):
        self._inner.append(0.0)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            self.seconds[self.key, name] += dt - self._inner.pop()
            self.calls[self.key, name] += 1
            if self._inner:
                self._inner[-1] += dt

    def wrap(self, owner, attr: str, name: str) -> None:
        fn = getattr(owner, attr)

        def timed(*args, **kwargs):
            with self(name):
                return fn(*args, **kwargs)
        setattr(owner, attr, timed)

    def report(self, title: str, wall: float, key=None) -> None:
        rows = sorted(((n, s, self.calls[k, n]) for (k, n), s in self.seconds.items() if k == key), key=lambda r: -r[1])
        print(f"\n{title}: {wall:.1f} s wall")
        print(f"  {'part':<40}{'calls':>7}{'ms/call':>10}{'share':>8}")
        for name, s, calls in rows:
            print(f"  {name:<40}{calls:>7}{s / calls * 1e3:>10.2f}{s / wall:>8.1%}")
        print(f"  {'other':<40}{'':>7}{'':>10}{(wall - sum(r[1] for r in rows)) / wall:>8.1%}")

    def clear(self) -> None:
        self.seconds.clear()
        self.calls.clear()


def instrument(env, timer: Timer) -> None:
    import mujoco                                   # loaded by the env already (after MUJOCO_GL is read)
    s = env.sim
    timer.wrap(s, "reset", "LIBERO reset (robosuite + init state)")
    timer.wrap(env, "_arrange", "scene arrangement")
    timer.wrap(s, "set_look", "appearance")
    timer.wrap(s, "set_camera", "camera move")
    timer.wrap(s, "teleport", "IK teleport")
    timer.wrap(s, "hold", "physics (settle / gripper periods)")
    timer.wrap(s, "grasping", "grasp check")
    timer.wrap(s, "render", "render: draw + read back")
    timer.wrap(mujoco, "mjv_updateScene", "render: scene update")   # robosuite calls it through the module


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m video_para.bench libero")
    ap.add_argument("--experiment", default="libero_tiny_para")
    ap.add_argument("--demos", type=int, default=4, help="expert demos on the protocol's training scenes")
    ap.add_argument("--episodes", type=int, default=2, help="rollouts on its test scenes")
    ap.add_argument("--max-steps", type=int, default=50, help="steps per rollout")
    ap.add_argument("--alternate", metavar="FIELD", default="",
                    help="an env config bool read at every reset (e.g. render_parked): each demo runs with it "
                         "true and false in turn, one table each. The machine's load then weighs on both alike; "
                         "separate runs on a shared machine differ by more than a 10%% cut")
    ap.add_argument("overrides", nargs="*", help="key=value for the experiment, e.g. env.image_height=256")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = load_config(ExperimentConfig, [f"experiment={a.experiment}", *a.overrides])
    if a.alternate and not isinstance(getattr(cfg.env, a.alternate, None), bool):
        sys.exit(f"--alternate {a.alternate}: not a bool field of the {cfg.env.type} env config")
    protocol = load_protocol(cfg.data.protocol, cfg.data.protocol_overrides)
    print(f"{a.experiment}: env {cfg.env.image_width}x{cfg.env.image_height}, protocol {protocol.name}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load: {subprocess.getoutput('uptime')}")
    timer = Timer()
    t0 = time.perf_counter()
    env = ENVS.build(cfg.env)
    print(f"env creation (LIBERO model build, render tuning): {time.perf_counter() - t0:.1f} s")
    instrument(env, timer)
    env.reset(specs(protocol, "train")[0], seed=0)   # the first reset after building is slower: not timed
    timer.clear()

    settings = [(a.alternate, True), (a.alternate, False)] if a.alternate else [None]
    configured = getattr(cfg.env, a.alternate) if a.alternate else None
    wall, frames, ok = Counter(), Counter(), Counter()
    for i, spec in enumerate(specs(protocol, "train")[:a.demos]):
        for setting in settings:
            if setting:
                setattr(env.cfg, *setting)
            timer.key, t0 = setting, time.perf_counter()
            ep, success = run_expert(env, spec, seed=i)
            wall[setting] += time.perf_counter() - t0
            frames[setting], ok[setting] = frames[setting] + len(ep), ok[setting] + success
    for setting in settings:
        title = f"expert demos{f' with env.{setting[0]}={setting[1]}' if setting else ''}: {ok[setting]}/{a.demos} " \
                f"succeeded, {frames[setting]} frames, {wall[setting] / a.demos:.2f} s/demo"
        timer.report(title, wall[setting], setting)
    if a.alternate:                                  # the rollouts run with the configured setting
        setattr(env.cfg, a.alternate, configured)
    timer.key = None
    timer.clear()

    policy = Policy(cfg.policy, STATS).eval()
    timer.wrap(policy, "predict", f"policy inference ({cfg.policy.backbone.type} + {cfg.policy.head.type})")
    t0 = time.perf_counter()
    with torch.no_grad():
        res = rollout(policy, env, specs(protocol, "test")[:a.episodes], replan_every=cfg.eval.replan_every,
                      max_steps=a.max_steps, desc="rollout")
    seconds = time.perf_counter() - t0
    steps = sum(e.steps for e in res.episodes)
    timer.report(f"rollouts (random-init policy, re-plan every {cfg.eval.replan_every}): {a.episodes} episodes, "
                 f"{steps} steps, {steps / seconds:.1f} steps/s", seconds)
    env.close()


if __name__ == "__main__":
    main()
