"""Training checkpoints for exact resume, LeRobot-style and written atomically:

    <output_dir>/checkpoints/<step>/pretrained_model/   Policy.save_pretrained (config.json, safetensors;
                                                        the EMA weights when EMA is on)
    <output_dir>/checkpoints/<step>/training_state/     accelerator.save_state: model, optimizer,
                                                        scheduler, RNG states, EMA (custom_checkpoint_0)
    <output_dir>/checkpoints/<step>/trainer_state.json  step, epoch, batches consumed in that epoch
    <output_dir>/checkpoints/last                       name of the newest complete checkpoint

A checkpoint is assembled in a temporary directory and renamed into place, and `last` is replaced
only afterwards, so a run killed at any moment leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable


@dataclass
class TrainerState:
    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0


def save_checkpoint(accelerator, export: Callable[[Path], None], out: Path, state: TrainerState) -> Path:
    """`export(directory)` writes the policy as it would be released (main process only)."""
    root = Path(out) / "checkpoints"
    final, tmp = root / f"{state.step:07d}", root / f".tmp-{state.step:07d}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp / "training_state"))      # every rank writes its RNG state
    if accelerator.is_main_process:
        export(tmp / "pretrained_model")
        (tmp / "trainer_state.json").write_text(json.dumps(asdict(state)))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        (root / ".last.tmp").write_text(final.name)
        os.replace(root / ".last.tmp", root / "last")
    accelerator.wait_for_everyone()
    return final


def latest_checkpoint(out: Path) -> Path | None:
    last = Path(out) / "checkpoints" / "last"
    if not last.exists():
        return None
    path = last.parent / last.read_text().strip()
    if not (path / "trainer_state.json").exists():
        raise FileNotFoundError(f"{last} points to {path}, which is not a complete checkpoint")
    return path


def load_checkpoint(accelerator, path: Path) -> TrainerState:
    accelerator.load_state(str(path / "training_state"))
    return TrainerState(**json.loads((path / "trainer_state.json").read_text()))
