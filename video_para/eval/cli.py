"""`python eval.py --policy DIR [--protocol NAME ...] [env.key=value ...]`: roll a saved policy out
on a protocol's test (or train, or val) scenes and write a report (by default beside the policy, in
DIR/../eval/<protocol>_<split>).

A policy is evaluated as the run that trained it evaluates it: env, protocol, re-planning interval,
episode length and seed come from the run's config it carries (config.json `run`; for older policies,
<run>/config.yaml beside DIR) unless given here, so eval.py reproduces the run's own numbers wherever
the policy was copied (a LIBERO policy gets the LIBERO env, a policy trained to execute whole chunks
is not re-planned every 4 steps)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..config import groups_text, load_config
from ..envs import ENVS, EnvConfig
from ..envs.tabletop import TabletopConfig
from ..experiment import ExperimentConfig
from ..models.gripper import FILTERS as GRIPPER_FILTERS, SNAPS
from ..models.policy import Policy
from ..scenes import SPLITS, load_protocol, specs
from .report import plot_protocol, result_row, success_table
from .rollout import rollout


@dataclass
class EnvOnly:
    env: EnvConfig = field(default_factory=TabletopConfig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="eval.py", description=__doc__, epilog=groups_text(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", required=True, help="directory written by Policy.save_pretrained")
    ap.add_argument("--protocol", help="configs/protocol/<name>.yaml or a YAML path (default: the run's data.protocol, "
                                       "else left_right)")
    ap.add_argument("--protocol-override", action="append", default=[],
                    help="e.g. rows=8 (repeatable; added to the run's own overrides when --protocol is not given)")
    ap.add_argument("--split", default="test", choices=SPLITS, help="val: the protocol's holdout (protocol.holdout)")
    ap.add_argument("--episodes", type=int, default=0, help="0: every scene of the split")
    ap.add_argument("--replan-every", type=int, help="default: the run's eval.replan_every, else 4")
    ap.add_argument("--ensemble-decay", type=float,
                    help="ACT's temporal ensembling with this m (>= 0): re-plan every tick, average overlapping chunks "
                         "(default: the run's eval.ensemble_decay, else off)")
    ap.add_argument("--reach-margin", type=float,
                    help="PARA: search step k's peak within this multiple of the training reach of the current EE pixel "
                         "(policy.head.reach_margin; 0: off; default: the policy's own)")
    ap.add_argument("--max-steps", type=int, help="default: the run's eval.max_steps, else 80")
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--seed", type=int, help="default: the run's seed, else 0")
    ap.add_argument("--gripper-filter", choices=GRIPPER_FILTERS,
                    help="chunk-level gripper decoding (policy.gripper_filter; default: the policy's own)")
    ap.add_argument("--gripper-snap", choices=SNAPS, help="policy.gripper_snap (default: the policy's own)")
    ap.add_argument("--gripper-snap-window", type=int, help="policy.gripper_snap_window (default: the policy's own)")
    ap.add_argument("--out", help="default: beside the policy, DIR/../eval/<protocol>_<split>")
    ap.add_argument("overrides", nargs="*", help="env.key=value")
    a = ap.parse_args(argv)
    policy = Policy.from_pretrained(a.policy)
    if a.gripper_filter:
        policy.config.gripper_filter = a.gripper_filter
    if a.gripper_snap:
        policy.config.gripper_snap = a.gripper_snap
    if a.gripper_snap_window is not None:
        policy.config.gripper_snap_window = a.gripper_snap_window
    policy.config.validate()                      # the flags above, checked as a config's fields are
    if a.ensemble_decay is not None:
        if a.ensemble_decay < 0:
            ap.error(f"--ensemble-decay must be >= 0, got {a.ensemble_decay}")
        policy.ensemble_decay = a.ensemble_decay
    if a.reach_margin is not None:
        if not hasattr(policy.head, "set_reach_margin"):
            ap.error(f"--reach-margin applies to PARA heads; this policy's head is '{policy.config.head.type}'")
        policy.head.set_reach_margin(a.reach_margin)
    run_yaml = Path(a.policy).parent / "config.yaml"
    saved = policy.run or (yaml.safe_load(run_yaml.read_text()) if run_yaml.exists() else None)
    if saved:
        run = load_config(ExperimentConfig, a.overrides, base=saved)
        env_cfg, replan, max_steps, seed = run.env, run.eval.replan_every, run.eval.max_steps, run.seed
        name, overrides = (a.protocol, []) if a.protocol else (run.data.protocol, list(run.data.protocol_overrides))
        print(f"[eval] settings from {Path(a.policy) / 'config.json' if policy.run else run_yaml} (flags override them)")
    else:
        env_cfg, replan, max_steps, seed = load_config(EnvOnly, a.overrides).env, 4, 80, 0
        name, overrides = a.protocol or "left_right", []
    replan, max_steps = a.replan_every or replan, a.max_steps or max_steps
    seed = seed if a.seed is None else a.seed
    protocol = load_protocol(name, [*overrides, *a.protocol_override])
    scenes = specs(protocol, a.split)[: a.episodes or None]
    out = Path(a.out) if a.out else Path(a.policy).parent / "eval" / f"{protocol.name}_{a.split}"
    plan = (f"re-plan every {replan} steps" if policy.ensemble_decay is None
            else f"re-plan every step, temporal ensemble m={policy.ensemble_decay}")
    print(f"[eval] {a.policy} on {protocol.name}/{a.split} ({env_cfg.type} env): {len(scenes)} episodes, "
          f"{plan}, at most {max_steps} steps, seed {seed}, "
          f"gripper filter {policy.config.gripper_filter}"
          + (f", switches snapped to the lowest step within {policy.config.gripper_snap_window}"
             if policy.config.gripper_snap != "none" else "")
          + (f", peaks within {policy.config.head.reach_margin}x the training reach"
             if getattr(policy.config.head, "reach_margin", 0) else ""))
    res = rollout(policy, ENVS.build(env_cfg), scenes, replan, max_steps, seed=seed,
                  video_dir=out / "videos", n_videos=a.videos)
    head, label = policy.config.head.type, f"{protocol.name}/{a.split}"
    paper = protocol.paper.get(head) if a.split == "test" else None
    md, csv_path = success_table([result_row(label, head, res, paper)], out, grasps=[(label, head, res.episodes)])
    plot = plot_protocol({head: res}, protocol, out, split=a.split)
    written = [md, csv_path, *([plot] if plot else [])]
    print(md.read_text())
    print("written:\n  " + "\n  ".join(map(str, written + [f for e in res.episodes for f in (e.video, e.overlay) if f])))
