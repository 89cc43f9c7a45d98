"""Training checkpoints for exact resume, LeRobot-style, pickle-free (safetensors + JSON), written atomically:

    <output_dir>/checkpoints/<step>/pretrained_model/   Policy.save_pretrained (the EMA weights when EMA is on)
    <output_dir>/checkpoints/<step>/training_state/     model.safetensors (the trained weights),
                                                        optimizer.safetensors (moments; param groups as JSON
                                                        metadata), ema.safetensors, rng_<rank>.json (each process)
    <output_dir>/checkpoints/<step>/trainer_state.json  step, epoch, global batches consumed in it, processes
    <output_dir>/checkpoints/<step>/config.yaml         the run's resolved config: a resume compares it
    <output_dir>/checkpoints/last                       name of the newest complete checkpoint

A checkpoint is assembled in `.tmp-<step>` and renamed into place, and `last` is replaced only afterwards,
so a run killed at any moment leaves the previous checkpoints intact; the next run removes the leftover.
The learning rate is a function of the step (no scheduler state). A damaged file is named and the
previous checkpoint is used instead.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file, save_file

# fields a resume may change: they do not affect the trained parameters or the metrics columns
RESUME_FREE = {"output_dir", "train.resume", "train.resume_override", "train.num_workers", "train.log_every",
               "train.save_every"}


@dataclass
class TrainerState:
    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0           # global batches (all processes) consumed in `epoch`
    processes: int = 1


class DamagedCheckpoint(RuntimeError):
    pass


def save_checkpoint(accelerator, out: Path, state: TrainerState, policy, optimizer, ema,
                    export: Callable[[Path], None], config_yaml: str) -> Path:
    """Called on every process; `export(directory)` writes the policy as it would be released."""
    root = Path(out) / "checkpoints"
    final, tmp = root / f"{state.step:07d}", root / f".tmp-{state.step:07d}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "training_state").mkdir(parents=True)
    accelerator.wait_for_everyone()
    (tmp / "training_state" / f"rng_{accelerator.process_index}.json").write_text(json.dumps(_rng_state()))
    if accelerator.is_main_process:
        save_file(_cpu(policy.state_dict()), tmp / "training_state" / "model.safetensors")
        opt = optimizer.state_dict()
        save_file(_cpu({f"{i}.{k}": v for i, s in opt["state"].items() for k, v in s.items()}),
                  tmp / "training_state" / "optimizer.safetensors",
                  metadata={"param_groups": json.dumps(opt["param_groups"])})
        if ema is not None:
            ema_state = ema.state_dict()
            shadow = ema_state.pop("shadow_params")
            save_file(_cpu({str(i): t for i, t in enumerate(shadow)}), tmp / "training_state" / "ema.safetensors",
                      metadata={"state": json.dumps(ema_state)})
        export(tmp / "pretrained_model")
        (tmp / "config.yaml").write_text(config_yaml)
        (tmp / "trainer_state.json").write_text(json.dumps(asdict(state)))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        (root / ".last.tmp").write_text(final.name)
        os.replace(root / ".last.tmp", root / "last")
    accelerator.wait_for_everyone()
    return final


def remove_partial(out: Path) -> None:
    """Checkpoints a killed run left half-written (only this run writes into its output folder)."""
    for stale in (Path(out) / "checkpoints").glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def checkpoints(out: Path) -> list[Path]:
    """Complete checkpoints to resume from, best first: the one `last` names (the newest when a kill came
    before `last` was written), then older ones."""
    root = Path(out) / "checkpoints"
    found = sorted(root.glob("[0-9]" * 7), reverse=True)        # only complete ones are renamed into place
    if (root / "last").exists():
        found = [p for p in found if p.name <= (root / "last").read_text().strip()]
    return [p for p in found if (p / "trainer_state.json").exists()]


def config_diff(checkpoint: Path, config: dict) -> dict[str, tuple]:
    """{dotted key: (checkpoint's value, this run's)} for the fields that differ, RESUME_FREE aside."""
    theirs, ours = (_flatten(c) for c in (yaml.safe_load((checkpoint / "config.yaml").read_text()), config))
    return {k: (theirs.get(k), ours.get(k)) for k in sorted(theirs.keys() | ours.keys())
            if k not in RESUME_FREE and theirs.get(k) != ours.get(k)}


def load_checkpoint(accelerator, path: Path, policy, optimizer, ema) -> TrainerState:
    """Restore every part or raise DamagedCheckpoint naming the file that could not be read."""
    files = path / "training_state"
    state = TrainerState(**_read(path / "trainer_state.json", lambda p: json.loads(p.read_text())))
    if state.processes != accelerator.num_processes:
        raise ValueError(f"{path} was written by {state.processes} processes; resume it with as many "
                         f"(this run has {accelerator.num_processes})")
    policy.load_state_dict(_read(files / "model.safetensors", load_file))
    tensors, meta = _read(files / "optimizer.safetensors", _load_with_metadata)
    opt = {"state": {}, "param_groups": json.loads(meta["param_groups"])}
    for key, value in tensors.items():
        i, name = key.split(".", 1)
        opt["state"].setdefault(int(i), {})[name] = value
    optimizer.load_state_dict(opt)
    if ema is not None:
        tensors, meta = _read(files / "ema.safetensors", _load_with_metadata)
        ema.load_state_dict({**json.loads(meta["state"]), "shadow_params": [tensors[str(i)] for i in range(len(tensors))]})
        ema.to(accelerator.device)
    _set_rng_state(_read(files / f"rng_{accelerator.process_index}.json", lambda p: json.loads(p.read_text())))
    return state


def _read(path: Path, reader: Callable):
    try:
        return reader(path)
    except Exception as e:          # a truncated, corrupted or missing file: name it
        raise DamagedCheckpoint(f"{path}: {type(e).__name__}: {e}") from e


def _load_with_metadata(path: Path) -> tuple[dict, dict]:
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def _cpu(tensors: dict) -> dict:
    return {k: v.detach().contiguous().cpu() for k, v in tensors.items()}


def _flatten(d: dict, prefix: str = "") -> dict:
    flat = {}
    for k, v in d.items():
        flat.update(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return flat


def _rng_state() -> dict:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"python": random.getstate(), "numpy": [kind, keys.tolist(), pos, has_gauss, gauss],
            "torch": torch.get_rng_state().tolist(),
            "cuda": [s.tolist() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else []}


def _set_rng_state(s: dict) -> None:
    version, internal, gauss = s["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, *rest = s["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(torch.tensor(s["torch"], dtype=torch.uint8))
    if s["cuda"]:
        torch.cuda.set_rng_state_all([torch.tensor(c, dtype=torch.uint8) for c in s["cuda"]])
