"""The training loop: Accelerate, split learning rates, warmup + cosine, optional EMA, metrics, periodic
evaluation — one loop for every stage (finetune | diffusion | pointtrack)."""
from __future__ import annotations

import json
import math
import platform
import subprocess
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from diffusers.training_utils import EMAModel
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..config import to_yaml
from ..models.policy import Policy
from .sampler import ResumableBatchSampler
from .checkpoint import TrainerState, latest_checkpoint, load_checkpoint, save_checkpoint
from .config import ExperimentConfig, TrainConfig
from .metrics import MetricsLog, trackers


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


@contextmanager
def ema_weights(ema, params: list):
    """Swap the EMA weights into `params` for the duration (no-op without EMA)."""
    if ema is None:
        yield
        return
    ema.store(params)
    ema.copy_to(params)
    try:
        yield
    finally:
        ema.restore(params)


def train(policy: Policy, dataset, cfg: TrainConfig, out: Path, seed: int = 0, progress: bool = True,
          evaluate: Callable[[Policy], dict] | None = None, every: int = 0) -> Policy:
    """Train `policy` on `dataset` for cfg.steps optimizer steps; writes out/metrics.csv and
    out/policy (Policy.save_pretrained; the EMA weights when train.ema_decay > 0). A NaN/Inf loss
    stops the run naming the step and term. `evaluate(policy) -> {name: value}` runs on the main
    process every `every` steps; its numbers join the logged row."""
    out = Path(out)
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.grad_accum,
                              log_with=trackers(cfg.log_with) or None,
                              project_config=ProjectConfiguration(str(out), logging_dir=str(out / "logs")))
    set_seed(seed)
    if len(dataset) < cfg.batch_size:
        raise ValueError(f"dataset has {len(dataset)} windows, fewer than train.batch_size={cfg.batch_size}")
    # the batch order is a function of (seed, epoch), and the loader's own seed comes from a private
    # generator, so the global RNG (augmentations) is consumed identically by a resumed run
    sampler = ResumableBatchSampler(len(dataset), cfg.batch_size, seed)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.num_workers,
                        generator=torch.Generator().manual_seed(seed))
    policy.freeze_unused(cfg.stage)
    groups = policy.param_groups(cfg.lr_backbone, cfg.lr_head, cfg.weight_decay_backbone, cfg.weight_decay_head)
    optimizer = torch.optim.AdamW(groups)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(cfg.warmup_steps, cfg.steps))
    model, optimizer, loader, scheduler = accelerator.prepare(policy, optimizer, loader, scheduler)
    trained = [p for g in optimizer.param_groups for p in g["params"]]
    ema = EMAModel(trained, decay=cfg.ema_decay) if cfg.ema_decay else None
    if ema is not None:
        accelerator.register_for_checkpointing(ema)        # saved and restored with the training state
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
    state = TrainerState()
    if cfg.resume and (ckpt := latest_checkpoint(out)) is not None:
        state = load_checkpoint(accelerator, ckpt)
        print(f"[resume] from {ckpt} at step {state.step}")
    accelerator.init_trackers(out.name, config={k: v if isinstance(v, (int, float, str, bool)) else str(v)
                                                for k, v in asdict(cfg).items()})
    log = MetricsLog(accelerator, out / "metrics.csv", state.step)
    unwrapped = accelerator.unwrap_model(model)

    def export(directory: Path) -> None:
        with ema_weights(ema, trained):
            unwrapped.save_pretrained(directory)

    step, clock = state.step, None
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
            if clock is None:                   # time from the end of the first step: no warm-up
                clock = (step, time.perf_counter())
            if ema is not None:
                ema.step(trained)
            row = {}
            if evaluate is not None and every and step % every == 0:
                row = _evaluate(accelerator, evaluate, unwrapped, ema, trained)
                model.train()
            if row or step % cfg.log_every == 0 or step == cfg.steps:
                row = {"step": step, **{k: round(v.item(), 6) for k, v in terms.items()},
                       **{f"lr_{g['name']}": g["lr"] for g in optimizer.param_groups}, **row}
                log.log(row, list(dict.fromkeys([*row, *([EVAL_KEY] if evaluate is not None and every else [])])))
                bar.set_postfix(loss=f"{row['loss']:.3f}")
            if cfg.save_every and step % cfg.save_every == 0 and step < cfg.steps:
                state.step = step
                save_checkpoint(accelerator, export, out, state)
            if step >= cfg.steps:
                break
        else:
            state.epoch, state.batches_in_epoch = state.epoch + 1, 0
    bar.close()
    log.close()
    if accelerator.is_main_process and clock and step > clock[0]:    # what `python -m video_para.bench train` reads
        (out / "throughput.json").write_text(json.dumps({
            "steps": step - clock[0], "seconds": time.perf_counter() - clock[1],
            "processes": accelerator.num_processes, "batch_per_process": cfg.batch_size}))
    accelerator.wait_for_everyone()
    if ema is not None:
        ema.copy_to(trained)
    if accelerator.is_main_process:
        unwrapped.save_pretrained(out / "policy")
    return unwrapped


EVAL_KEY = "eval_success_rate"


def _evaluate(accelerator, evaluate, policy: Policy, ema, trained: list) -> dict:
    """Main process only, on the weights that would be exported, without touching the training RNG
    (so a run with evaluation reaches the same parameters as one without)."""
    if not accelerator.is_main_process:
        return {}
    devices = [accelerator.device] if accelerator.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), ema_weights(ema, trained):
        return evaluate(policy)
