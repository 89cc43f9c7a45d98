"""`make quickstart`: the paper's central result in miniature, on CPU.

Scripted-expert demos on the LEFT half of the bowl-position grid in the built-in tabletop scene; a
PARA policy and a global-pool-MLP regression policy trained on the same tiny CNN and the same data;
both evaluated on the RIGHT half (spatial extrapolation, teleport servo, fixed seeds). Prints a table
like the paper's and where the report, plots and rollout videos were written.

    python -m video_para.quickstart [key=value ...]   # overrides apply to both experiments
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from .config import load_config, to_yaml
from .data.sources import build_dataset
from .envs import ENVS
from .eval.protocols import load_protocol, specs
from .eval.report import plot_loss_curves, plot_success_vs_distance, success_table
from .eval.rollout import rollout
from .training.cli import finetune
from .training.config import ExperimentConfig

METHODS = {"PARA": "tiny_para", "global MLP": "tiny_global_mlp"}
PAPER_KEYS = {"PARA": "para", "global MLP": "global_mlp"}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    t0 = time.time()
    out = Path("outputs/quickstart")
    for a in argv:
        if a.startswith("output_dir="):
            out = Path(a.split("=", 1)[1])
    cfgs = {m: load_config(ExperimentConfig, [f"experiment={e}", *argv, f"output_dir={out / e}"])
            for m, e in METHODS.items()}
    first = next(iter(cfgs.values()))
    print(f"[quickstart] seed {first.seed}; protocol {first.data.protocol} {first.data.protocol_overrides}; "
          f"output {out}\n[quickstart] PARA config:\n{to_yaml(cfgs['PARA'])}")
    protocol = load_protocol(first.data.protocol, first.data.protocol_overrides)
    dataset = build_dataset(first.data, first.env, first.policy.n_window, seed=first.seed)
    print(f"[data] {len(dataset.episodes)} demos ({protocol.train} half), {len(dataset)} windows, "
          f"{time.time() - t0:.0f} s so far")
    test_specs = specs(protocol, "test")
    if first.eval.episodes:
        test_specs = test_specs[: first.eval.episodes]
    env = ENVS.build(first.env)
    results, rows = {}, []
    for method, cfg in cfgs.items():
        print(f"[train] {method}: {cfg.train.steps} steps")
        policy = finetune(cfg, dataset=dataset)
        results[method] = rollout(policy, env, test_specs, cfg.eval.replan_every, cfg.eval.max_steps, seed=cfg.seed,
                                  video_dir=Path(cfg.output_dir) / "videos", n_videos=cfg.eval.videos,
                                  desc=f"eval {method} ({protocol.test} half)")
        rows.append({"protocol": protocol.name, "method": method, "successes": results[method].successes,
                     "episodes": len(test_specs), "paper": protocol.paper.get(PAPER_KEYS[method])})
        print(f"[eval] {method}: {results[method].successes}/{len(test_specs)} successes, "
              f"{time.time() - t0:.0f} s so far")
    md, csv_path = success_table(rows, out)
    plots = [plot_success_vs_distance(results, specs(protocol, "train"), out / "success_vs_distance.png"),
             plot_loss_curves({m: Path(c.output_dir) / "metrics.csv" for m, c in cfgs.items()}, out / "loss.png")]
    print("\n" + md.read_text())
    print(f"written: {md}, {csv_path}, " + ", ".join(map(str, plots)))
    for m, c in cfgs.items():
        print(f"  {m}: policy {Path(c.output_dir) / 'policy'}, videos {Path(c.output_dir) / 'videos'}")
    print(f"[quickstart] done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
