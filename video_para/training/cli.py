"""`python finetune.py key=value ...` (also under `accelerate launch`)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from accelerate.utils import set_seed

from ..config import load_config
from ..data.sources import build_dataset
from ..models.policy import Policy
from .config import ExperimentConfig
from .trainer import train, write_run_info


def init_backbone(policy: Policy, directory: Path) -> None:
    """Start from the backbone of a saved policy (e.g. stage-1 diffusion pretraining); the head,
    whose bins depend on this run's data statistics, starts fresh."""
    source = Policy.from_pretrained(directory)
    if source.config.backbone != policy.config.backbone:
        raise ValueError(f"train.init_from={directory}: its backbone config {source.config.backbone} differs from "
                         f"this run's {policy.config.backbone}")
    policy.backbone.load_state_dict(source.backbone.state_dict())
    print(f"[init] backbone weights from {directory}")


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
    set_seed(cfg.seed)                  # the initial weights depend on the seed only, not on what ran before
    policy = Policy(cfg.policy, stats)
    if cfg.train.init_from:
        init_backbone(policy, Path(cfg.train.init_from))
    return train(policy, dataset, cfg.train, out, seed=cfg.seed, progress=progress)


def main(argv: list[str] | None = None) -> None:
    cfg = load_config(ExperimentConfig, sys.argv[1:] if argv is None else argv)
    print(f"[finetune] seed {cfg.seed}, output {cfg.output_dir}")
    finetune(cfg)
    print(f"[finetune] policy saved to {Path(cfg.output_dir) / 'policy'}")
