"""Training metrics: out/metrics.csv always, Accelerate's trackers (TensorBoard, W&B) when asked for.

Only the main process writes. A resumed run first drops the CSV rows logged after the checkpoint it
resumes from (the killed run got further than its last checkpoint), so every step appears once.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

from accelerate.utils import is_tensorboard_available, is_wandb_available

_AVAILABLE = {"tensorboard": is_tensorboard_available, "wandb": is_wandb_available}


def trackers(log_with: list[str]) -> list[str]:
    """The Accelerate trackers to start: log_with without 'csv'; one that is not installed is an error."""
    names = [n for n in log_with if n != "csv"]
    for n in names:
        if not _AVAILABLE[n]():
            raise ModuleNotFoundError(f"train.log_with asks for '{n}', which is not installed (pip install {n})")
    return names


class MetricsLog:
    def __init__(self, accelerator, path: Path, resumed_step: int = 0):
        self.accelerator, self.path = accelerator, Path(path)
        self.file = self.writer = None
        if not accelerator.is_main_process:
            return
        fields = None
        if resumed_step and self.path.exists():
            fields = _truncate(self.path, resumed_step)
        self.file = open(self.path, "a" if fields else "w", newline="")
        if fields:
            self.writer = csv.DictWriter(self.file, fieldnames=fields)

    def log(self, row: dict, fields: list[str]) -> None:
        """row: {'step': ..., metric: value}; `fields` fixes the CSV columns on the first call
        (columns a row lacks stay empty, e.g. the periodic evaluation between its steps)."""
        self.accelerator.log({k: v for k, v in row.items() if k != "step"}, step=row["step"])
        if self.file is None:
            return
        if self.writer is None:
            self.writer = csv.DictWriter(self.file, fieldnames=fields)
            self.writer.writeheader()
        self.writer.writerow(row)
        self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        for tracker in self.accelerator.trackers:    # not end_training(): that also destroys the
            tracker.finish()                         # process group, which callers may still use


def _truncate(path: Path, last_step: int) -> list[str] | None:
    """Keep the header and the rows up to `last_step`; return the header (None for an empty file)."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = [r for r in reader if int(r["step"]) <= last_step]
        fields = reader.fieldnames
    if not fields:
        return None
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return list(fields)
