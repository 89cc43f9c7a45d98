"""`python eval.py --policy DIR --protocol NAME [...] [env.key=value ...]`: roll a saved policy out
on a protocol's test (or train) scenes and write a report."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from ..config import load_config
from ..envs import ENVS, EnvConfig
from ..envs.tabletop import TabletopConfig
from ..models.policy import Policy
from .protocols import load_protocol, specs
from .report import grasp_table, plot_success_vs_distance, plot_viewpoints, success_table
from .rollout import rollout


@dataclass
class EnvOnly:
    env: EnvConfig = field(default_factory=TabletopConfig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="eval.py", description=__doc__)
    ap.add_argument("--policy", required=True, help="directory written by Policy.save_pretrained")
    ap.add_argument("--protocol", default="left_right", help="configs/protocol/<name>.yaml or a YAML path")
    ap.add_argument("--protocol-override", action="append", default=[], help="e.g. rows=8 (repeatable)")
    ap.add_argument("--split", default="test", choices=["train", "test"])
    ap.add_argument("--episodes", type=int, default=0, help="0: every scene of the split")
    ap.add_argument("--replan-every", type=int, default=4)
    ap.add_argument("--max-steps", type=int, default=80)
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="outputs/eval")
    ap.add_argument("overrides", nargs="*", help="env.key=value")
    a = ap.parse_args(argv)
    env_cfg = load_config(EnvOnly, a.overrides).env
    policy = Policy.from_pretrained(a.policy)
    protocol = load_protocol(a.protocol, a.protocol_override)
    scenes = specs(protocol, a.split)[: a.episodes or None]
    out = Path(a.out)
    print(f"[eval] {a.policy} on {protocol.name}/{a.split}: {len(scenes)} episodes, seed {a.seed}")
    res = rollout(policy, ENVS.build(env_cfg), scenes, a.replan_every, a.max_steps, seed=a.seed,
                  video_dir=out / "videos", n_videos=a.videos)
    head = policy.config.head.type
    md, csv_path = success_table([{"protocol": f"{protocol.name}/{a.split}", "method": head,
                                   "successes": res.successes, "episodes": len(scenes),
                                   "paper": protocol.paper.get(head)}], out)
    with md.open("a") as f:
        f.write(grasp_table([(f"{protocol.name}/{a.split}", head, res.episodes)]))
    written = [md, csv_path]
    train = specs(protocol, "train")
    if len(protocol.thetas) > 1:
        written.append(plot_viewpoints({head: res}, train, out / "viewpoints.png"))
    elif a.split == "test":
        written.append(plot_success_vs_distance({head: res}, train, out / "success_vs_distance.png"))
    print(md.read_text())
    print("written:\n  " + "\n  ".join(map(str, written + [f for e in res.episodes for f in (e.video, e.overlay) if f])))
