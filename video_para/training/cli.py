"""`python finetune.py key=value ...` (also under `accelerate launch`)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from ..config import load_config
from ..data.sources import build_dataset
from ..models.policy import Policy
from .config import ExperimentConfig
from .trainer import train, write_run_info


def finetune(cfg: ExperimentConfig, dataset=None, progress: bool = True) -> Policy:
    """Train the experiment's policy; `dataset` may be passed in to share demos between runs."""
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_run_info(cfg, out)
    if dataset is None:
        t0 = time.time()
        dataset = build_dataset(cfg.data, cfg.env, cfg.policy.n_window, seed=cfg.seed, progress=progress)
        print(f"[data] {len(dataset.episodes)} demos, {len(dataset)} windows ({dataset.dropped} dropped) "
              f"in {time.time() - t0:.1f} s")
    stats = dataset.stats()
    policy = Policy(cfg.policy, stats)
    return train(policy, dataset, cfg.train, out, seed=cfg.seed, progress=progress)


def main(argv: list[str] | None = None) -> None:
    cfg = load_config(ExperimentConfig, sys.argv[1:] if argv is None else argv)
    print(f"[finetune] seed {cfg.seed}, output {cfg.output_dir}")
    finetune(cfg)
    print(f"[finetune] policy saved to {Path(cfg.output_dir) / 'policy'}")
