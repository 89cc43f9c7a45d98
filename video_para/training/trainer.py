"""The training loop: Accelerate, split learning rates, warmup + cosine, optional EMA, metrics, periodic
evaluation — one loop for every stage (finetune | autoencoder | diffusion | pointtrack)."""
from __future__ import annotations

import hashlib
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
from accelerate.utils import ProjectConfiguration, gather_object, set_seed
from diffusers.training_utils import EMAModel
from torch.utils.data import DataLoader

from ..config import to_yaml
from ..experiment import ExperimentConfig, TrainConfig
from ..models.policy import Policy
from ..progress import progress as progress_bar   # plain lines, not bar redraws, when not on a terminal
from .checkpoint import (DamagedCheckpoint, TrainerState, checkpoints, load_checkpoint, remove_partial,
                         save_checkpoint)
from .metrics import MetricsLog, trackers
from .sampler import ResumableBatchSampler


def warmup_cosine(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
    return factor


def write_run_info(cfg: ExperimentConfig, out: Path, accelerator: Accelerator) -> None:
    """Everything needed to reproduce the run, beside its outputs (STYLE.md habit 4); main process only.
    `accelerate` says how it ran: processes, precision and the global batch they make."""
    if not accelerator.is_main_process:
        return
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
        "accelerate": {"distributed_type": str(accelerator.distributed_type), "num_processes": accelerator.num_processes,
                       "mixed_precision": accelerator.mixed_precision, "batch_per_process": cfg.train.batch_size,
                       "global_batch": cfg.train.batch_size * accelerator.num_processes},
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


def build_accelerator(cfg: TrainConfig, out: Path) -> Accelerator:
    """The run's one Accelerator. Build it before anything else touches Accelerate: a PartialState made
    first (e.g. by a print helper) fixes a non-distributed state and every rank then trains alone.
    Mixed precision is the experiment's when set, else the launcher's (flag or config file)."""
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision or None, gradient_accumulation_steps=cfg.grad_accum,
                              log_with=trackers(cfg.log_with) or None,
                              project_config=ProjectConfiguration(str(out), logging_dir=str(out / "logs")))
    if (plugin := accelerator.state.deepspeed_plugin) is not None:
        if cfg.save_every or cfg.resume:
            raise NotImplementedError("train.save_every/train.resume under DeepSpeed: its sharded optimizer state "
                                      "needs DeepSpeed's own (pickle) checkpoints; use DDP for resumable runs")
        # the loader is built from a batch sampler (its batch_size is None), so DeepSpeed cannot read the
        # "auto" micro batch from it; and DeepSpeed clips the gradients itself
        plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = cfg.batch_size
        plugin.deepspeed_config["gradient_clipping"] = cfg.grad_clip
    return accelerator


def train(policy: Policy, dataset, cfg: ExperimentConfig, accelerator: Accelerator | None = None,
          progress: bool = True, evaluate: Callable[[Policy], dict] | None = None) -> Policy:
    """Train `policy` on `dataset` for cfg.train.steps optimizer steps; writes metrics.csv and policy/
    (the EMA weights when train.ema_decay > 0) under cfg.output_dir. The global batch is
    processes x train.batch_size. A NaN/Inf loss stops every process naming the step and term.
    `evaluate(policy) -> {name: value}` runs on the main process every eval.every steps; its numbers
    join the logged row."""
    tc, out, seed = cfg.train, Path(cfg.output_dir), cfg.seed
    accelerator = accelerator or build_accelerator(tc, out)
    set_seed(seed)
    if len(dataset) < tc.batch_size * accelerator.num_processes:
        raise ValueError(f"dataset has {len(dataset)} windows, fewer than one global batch "
                         f"({accelerator.num_processes} processes x train.batch_size={tc.batch_size})")
    # the batch order is a function of (seed, epoch), and the loader's own seed comes from a private
    # generator, so the global RNG (augmentations) is consumed identically by a resumed run
    sampler = ResumableBatchSampler(len(dataset), tc.batch_size, seed)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=tc.num_workers,
                        generator=torch.Generator().manual_seed(seed))
    policy.freeze_unused(tc.stage)
    groups = policy.param_groups(tc.lr_backbone, tc.lr_head, tc.weight_decay_backbone, tc.weight_decay_head)
    optimizer = torch.optim.AdamW(groups)
    # the lr is set from the step (nanoGPT-style): a prepared scheduler steps once per process per
    # optimizer step, and the schedule needs no state in checkpoints
    base_lrs, schedule = [g["lr"] for g in groups], warmup_cosine(tc.warmup_steps, tc.steps)
    model, optimizer, loader = accelerator.prepare(policy, optimizer, loader)
    trained = [p for g in optimizer.param_groups for p in g["params"]]
    ema = EMAModel(trained, decay=tc.ema_decay) if tc.ema_decay else None
    unwrapped = accelerator.unwrap_model(model)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        remove_partial(out)
    state = _resume(accelerator, out, unwrapped, optimizer, ema) if tc.resume else TrainerState()
    state.processes = accelerator.num_processes
    accelerator.init_trackers(out.name, config={k: v if isinstance(v, (int, float, str, bool)) else str(v)
                                                for k, v in asdict(tc).items()})
    log = MetricsLog(accelerator, out / "metrics.csv", state.step)
    every = cfg.eval.every if evaluate is not None else 0
    columns = [EVAL_KEY] if every else []

    def export(directory: Path) -> None:
        with ema_weights(ema, trained):
            unwrapped.save_pretrained(directory)

    step, clock = state.step, None
    bar = progress_bar(total=tc.steps, initial=step, desc="train", disable=not (progress and accelerator.is_main_process))
    model.train()
    while step < tc.steps:
        sampler.set_position(state.epoch, state.batches_in_epoch)
        for batch in loader:
            state.batches_in_epoch += accelerator.num_processes
            with accelerator.accumulate(model):
                terms = model(batch, tc.stage)
                # the mean over processes is what is logged; a NaN/Inf on any process makes it non-finite
                # everywhere, so every process stops here instead of waiting in the gradient all-reduce
                means = accelerator.reduce(torch.stack([v.detach().float() for v in terms.values()]), "mean")
                for name, value in zip(terms, means.tolist()):
                    if not math.isfinite(value):
                        raise FloatingPointError(f"step {step}: loss term '{name}' is {value} (on at least one "
                                                 "process); stopping before the parameters are corrupted")
                accelerator.backward(terms["loss"])
                if accelerator.sync_gradients and tc.grad_clip > 0:
                    accelerator.clip_grad_norm_(model.parameters(), tc.grad_clip)
                for g, lr in zip(optimizer.param_groups, base_lrs):
                    g["lr"] = lr * schedule(step)
                optimizer.step()
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
            if every and step % every == 0:
                row = _evaluate(accelerator, evaluate, unwrapped, ema, trained)
                model.train()
            if row or step % tc.log_every == 0 or step == tc.steps:
                # lr_*: the rate this step used, warmup_cosine(step - 1) x the group's base rate
                row = {"step": step, **{k: round(v, 6) for k, v in zip(terms, means.tolist())},
                       **{f"lr_{g['name']}": g["lr"] for g in optimizer.param_groups}, **row}
                log.log(row, list(dict.fromkeys([*row, *columns])))
                bar.set_postfix(loss=f"{row['loss']:.3f}")
            if tc.save_every and (step % tc.save_every == 0 or step == tc.steps):
                state.step = step
                save_checkpoint(accelerator, out, state, unwrapped, optimizer, ema, export, to_yaml(cfg))
            if step >= tc.steps:
                break
        else:
            state.epoch, state.batches_in_epoch = state.epoch + 1, 0
    bar.close()
    log.close()
    if accelerator.is_main_process and clock and step > clock[0]:    # what `python -m video_para.bench train` reads
        (out / "throughput.json").write_text(json.dumps({
            "steps": step - clock[0], "seconds": time.perf_counter() - clock[1],
            "processes": accelerator.num_processes, "batch_per_process": tc.batch_size}))
    _check_ranks_agree(accelerator, unwrapped, out)
    if ema is not None:
        ema.copy_to(trained)
    if accelerator.is_main_process:
        unwrapped.save_pretrained(out / "policy")
    accelerator.wait_for_everyone()
    return unwrapped


def _resume(accelerator, out: Path, policy: Policy, optimizer, ema) -> TrainerState:
    """The newest checkpoint that loads on every process; a damaged one is named and skipped."""
    for path in checkpoints(out):
        try:
            error = ""
            state = load_checkpoint(accelerator, path, policy, optimizer, ema)
        except DamagedCheckpoint as e:
            error = str(e)
        errors = gather_object([error])                 # every process resumes from the same checkpoint
        if not any(errors):
            accelerator.print(f"[resume] from {path} at step {state.step}")
            return state
        accelerator.print(f"[resume] WARNING: {next(e for e in errors if e)}; trying the previous checkpoint")
    if checkpoints(out):
        raise RuntimeError(f"[resume] no checkpoint in {out / 'checkpoints'} could be loaded (see the warnings)")
    accelerator.print(f"[resume] no checkpoint in {out / 'checkpoints'}: starting at step 0")
    return TrainerState()


def _check_ranks_agree(accelerator, policy: Policy, out: Path) -> None:
    """Every process must end with the same parameters (DDP averaged the gradients); their digests go to
    run.json so a run's folder shows it."""
    digests = gather_object([param_digest(policy)])
    if accelerator.is_main_process:
        info = json.loads((out / "run.json").read_text()) if (out / "run.json").exists() else {}
        (out / "run.json").write_text(json.dumps({**info, "param_sha256_per_process": digests}, indent=2))
    if len(set(digests)) > 1:
        raise RuntimeError(f"the {len(digests)} processes ended with different parameters: {digests}")


def param_digest(policy: Policy) -> str:
    h = hashlib.sha256()
    for name, value in sorted(policy.state_dict().items()):
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


EVAL_KEY = "eval_success_rate"


def _evaluate(accelerator, evaluate, policy: Policy, ema, trained: list) -> dict:
    """Main process only, on the weights that would be exported, without touching the training RNG
    (so a run with evaluation reaches the same parameters as one without)."""
    if not accelerator.is_main_process:
        return {}
    devices = [accelerator.device] if accelerator.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), ema_weights(ema, trained):
        return evaluate(policy)
