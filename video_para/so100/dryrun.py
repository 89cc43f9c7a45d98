"""The SO-100 path end to end in MuJoCo (`make so100-dryrun`), CPU-sized:

    python -m video_para.so100.dryrun [dryrun.episodes=8] [train.steps=300 ...]

1. scripted-expert demos in the SO-101 scene (the expert drives the arm through SafeIK), written as
   a LeRobot v3 dataset with the camera calibration on every frame;
2. a tiny PARA policy and a tiny global-MLP policy trained on that dataset (data.source=lerobot);
3. both deployed through the deployment loop (FK start keypoint -> policy -> SafeIK -> send_action)
   on each protocol's test scenes: the calibrated camera, and the camera moved to new viewpoints
   (zero-shot viewpoint transfer);
4. results.md/csv (success beside the paper's number) and the wall time of every stage.
`dryrun.*` arguments set DryRunConfig fields; any other key=value applies to both experiments.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import exit_if_help, load_config
from ..data.lerobot import write_dataset
from ..envs import ENVS
from ..envs.expert import generate_demos
from ..eval.report import result_row, success_table, write_json
from ..experiment import ExperimentConfig
from ..scenes import load_protocol, specs
from ..suite import subsample
from ..training.cli import finetune
from .deploy import DeployConfig, sim_rollout


@dataclass
class DryRunConfig:
    output_dir: str = "outputs/so100_dryrun"
    methods: list[str] = field(default_factory=lambda: ["so100_tiny_para", "so100_tiny_global_mlp"])
    train_protocol: str = "so100_pick"            # its train split gives the demos
    test_protocols: list[str] = field(default_factory=lambda: ["so100_pick", "so100_viewpoint"])
    protocol_overrides: list[str] = field(default_factory=list)   # applied to every protocol, e.g. ["rows=2"]
    episodes: int = 0                             # test scenes per protocol, evenly subsampled (0: all)
    seed: int = 0
    torch_threads: int = 1                        # measured: 2 threads beside MuJoCo's GL on a busy 2-core
                                                  # machine made predict() ~13x slower than 1 thread


def main(argv: list[str] | None = None) -> list[dict]:
    argv = list(sys.argv[1:] if argv is None else argv)
    exit_if_help(argv, "python -m video_para.so100.dryrun [dryrun.field=value ...] [experiment key=value ...]",
                 __doc__, DryRunConfig)
    cfg = load_config(DryRunConfig, [a.removeprefix("dryrun.") for a in argv if a.startswith("dryrun.")])
    common = [a for a in argv if not a.startswith("dryrun.")]
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.torch_threads or threads)
    try:
        return _run(cfg, common)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: DryRunConfig, common: list[str]) -> list[dict]:
    out, t_all, times = Path(cfg.output_dir), time.time(), {}
    exp = {m: load_config(ExperimentConfig, [f"experiment={m}", *common, f"seed={cfg.seed}",
                                             "data.source=lerobot", f"data.root={out / 'demos'}",
                                             f"output_dir={out / m}"]) for m in cfg.methods}
    env_cfg = next(iter(exp.values())).env

    t0 = time.time()
    env = ENVS.build(env_cfg)
    try:
        train_scenes = specs(load_protocol(cfg.train_protocol, cfg.protocol_overrides), "train")
        demos = generate_demos(env, train_scenes, seed=cfg.seed)
        write_dataset(demos, out / "demos", robot_type="so100_sim")
        times["demos"] = time.time() - t0
        print(f"[dryrun] {len(demos)} expert demos ({sum(len(d) for d in demos)} frames) -> {out / 'demos'} "
              f"in {times['demos']:.0f} s")
        rows = []
        for name, ecfg in exp.items():
            t0 = time.time()
            policy = finetune(ecfg)
            times[f"train {name}"] = time.time() - t0
            deploy = DeployConfig(replan_every=ecfg.eval.replan_every, max_steps=ecfg.eval.max_steps, seed=cfg.seed)
            for proto_name in cfg.test_protocols:
                protocol = load_protocol(proto_name, cfg.protocol_overrides)
                scenes = subsample(specs(protocol, "test"), cfg.episodes)
                t0 = time.time()
                res, logs = sim_rollout(policy, env, scenes, deploy, desc=f"deploy {name} on {proto_name}")
                times[f"deploy {name} on {proto_name}"] = time.time() - t0
                head = ecfg.policy.head.type
                rows.append({**result_row(proto_name, head, res, protocol.paper.get(head)),
                             "held_commands": sum(g.holds for g in logs), "limited_commands": sum(g.limited for g in logs),
                             "failures": [e.failure for e in res.episodes if e.failure]})
                print(f"[dryrun] {name} on {proto_name}: {res.successes}/{len(scenes)}")
    finally:
        env.close()
    times["total"] = time.time() - t_all
    md, _ = success_table(rows, out)
    write_json(out / "dryrun.json", {"results": rows, "seconds": times})
    print("\n" + md.read_text())
    print("wall time (s): " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()))
    print(f"written: {md}, {out / 'dryrun.json'}")
    return rows


if __name__ == "__main__":
    main()
