"""The learning rate the trainer gives each optimizer param group, step by step: warmup then cosine."""
import csv
import math

import pytest
from test_training import SMALL
from torch.optim.optimizer import register_optimizer_step_pre_hook

from video_para.config import load_config
from video_para.experiment import ExperimentConfig
from video_para.training.cli import finetune

# 6 steps, 2 of warmup: (s + 1) / 2 for s < 2, then 0.5 (1 + cos(pi (s - 2) / 4))
FACTORS = [0.5, 1.0, 1.0, (2 + math.sqrt(2)) / 4, 0.5, (2 - math.sqrt(2)) / 4]
BASE = {"backbone": 2e-3, "backbone_added": 1e-2, "head": 1e-2}   # the keypoint embedding trains at the head's rate


@pytest.mark.parametrize("grad_accum", [1, 2])
def test_each_param_group_steps_at_its_base_rate_times_warmup_cosine(tmp_path, grad_accum):
    """Read from the optimizer at every optimizer step (micro-batches of an accumulated step do not advance
    the schedule), and logged as the rate each step used."""
    cfg = load_config(ExperimentConfig, [*SMALL, "train.steps=6", "train.warmup_steps=2", "train.log_every=1",
                                         "train.lr_backbone=2e-3", "train.lr_head=1e-2", f"train.grad_accum={grad_accum}",
                                         "train.batch_size=4", f"output_dir={tmp_path}"])
    seen = []
    hook = register_optimizer_step_pre_hook(lambda opt, args, kwargs: seen.append(
        {g["name"]: g["lr"] for g in opt.param_groups}))
    try:
        finetune(cfg, progress=False)
    finally:
        hook.remove()
    expected = [{name: lr * f for name, lr in BASE.items()} for f in FACTORS]
    assert seen == [pytest.approx(e, rel=1e-12) for e in expected]
    logged = [{name: float(r[f"lr_{name}"]) for name in BASE} for r in csv.DictReader(open(tmp_path / "metrics.csv"))]
    assert logged == [pytest.approx(e, rel=1e-12) for e in expected]
