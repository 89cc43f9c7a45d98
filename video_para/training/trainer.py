"""The training loop: Accelerate, split learning rates, warmup + cosine, CSV log, one screen long."""
from __future__ import annotations

import csv
import json
import math
import platform
import subprocess
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..config import to_yaml
from ..models.policy import Policy
from .sampler import ResumableBatchSampler
from .checkpoint import TrainerState, latest_checkpoint, load_checkpoint, save_checkpoint
from .config import ExperimentConfig, TrainConfig


def warmup_cosine(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
    return factor


def write_run_info(cfg: ExperimentConfig, out: Path) -> None:
    """Everything needed to reproduce the run, beside its outputs (STYLE.md habit 4)."""
    import accelerate
    import diffusers
    import numpy
    import transformers
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=10).stdout.strip()
    except OSError:
        commit = ""
    (out / "config.yaml").write_text(to_yaml(cfg))
    (out / "run.json").write_text(json.dumps({
        "seed": cfg.seed, "git_commit": commit, "python": platform.python_version(),
        "versions": {m.__name__: m.__version__ for m in (torch, numpy, diffusers, transformers, accelerate)}},
        indent=2))


def train(policy: Policy, dataset, cfg: TrainConfig, out: Path, seed: int = 0, progress: bool = True) -> Policy:
    """Train `policy` on `dataset` for cfg.steps optimizer steps; writes out/metrics.csv and
    out/policy (Policy.save_pretrained). A NaN/Inf loss stops the run naming the step and term."""
    out = Path(out)
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.grad_accum)
    set_seed(seed)
    if len(dataset) < cfg.batch_size:
        raise ValueError(f"dataset has {len(dataset)} windows, fewer than train.batch_size={cfg.batch_size}")
    # the batch order is a function of (seed, epoch), and the loader's own seed comes from a private
    # generator, so the global RNG (augmentations) is consumed identically by a resumed run
    sampler = ResumableBatchSampler(len(dataset), cfg.batch_size, seed)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.num_workers,
                        generator=torch.Generator().manual_seed(seed))
    groups = policy.param_groups(cfg.lr_backbone, cfg.lr_head, cfg.weight_decay_backbone, cfg.weight_decay_head)
    optimizer = torch.optim.AdamW(groups)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(cfg.warmup_steps, cfg.steps))
    model, optimizer, loader, scheduler = accelerator.prepare(policy, optimizer, loader, scheduler)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
    state = TrainerState()
    if cfg.resume and (ckpt := latest_checkpoint(out)) is not None:
        state = load_checkpoint(accelerator, ckpt)
        print(f"[resume] from {ckpt} at step {state.step}")
    log_file = open(out / "metrics.csv", "a" if state.step else "w", newline="") if accelerator.is_main_process else None
    writer, step = None, state.step
    bar = tqdm(total=cfg.steps, initial=step, desc="train", disable=not (progress and accelerator.is_main_process))
    model.train()
    while step < cfg.steps:
        sampler.set_position(state.epoch, state.batches_in_epoch * accelerator.num_processes)
        for batch in loader:
            state.batches_in_epoch += 1
            with accelerator.accumulate(model):
                terms = model(batch, cfg.stage)
                for name, value in terms.items():
                    if not torch.isfinite(value).all():
                        raise FloatingPointError(f"step {step}: loss term '{name}' is {value.item()}; stopping "
                                                 "before the parameters are corrupted (nothing was saved)")
                accelerator.backward(terms["loss"])
                if accelerator.sync_gradients and cfg.grad_clip > 0:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            step += 1
            bar.update(1)
            if log_file and (step % cfg.log_every == 0 or step == cfg.steps):
                row = {"step": step, **{k: round(v.item(), 6) for k, v in terms.items()},
                       **{f"lr_{g['name']}": g["lr"] for g in optimizer.param_groups}}
                if writer is None:
                    writer = csv.DictWriter(log_file, fieldnames=list(row))
                    if not state.step or log_file.tell() == 0:
                        writer.writeheader()
                writer.writerow(row)
                log_file.flush()
                bar.set_postfix(loss=f"{row['loss']:.3f}")
            if cfg.save_every and step % cfg.save_every == 0 and step < cfg.steps:
                state.step = step
                save_checkpoint(accelerator, accelerator.unwrap_model(model), out, state)
            if step >= cfg.steps:
                break
        else:
            state.epoch, state.batches_in_epoch = state.epoch + 1, 0
    bar.close()
    if log_file:
        log_file.close()
    accelerator.wait_for_everyone()
    policy = accelerator.unwrap_model(model)
    if accelerator.is_main_process:
        policy.save_pretrained(out / "policy")
    return policy
