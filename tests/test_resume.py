"""A real training process killed with SIGKILL between checkpoints, inside a checkpoint write and inside
the final export, resumed each time, ends with exactly the parameters (EMA included) and the metrics log
of an uninterrupted run, and no temp folders left behind."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["experiment=tiny_para", "env.image_height=32", "env.image_width=32", "policy.image_height=32",
        "policy.image_width=32", "data.protocol_overrides=[rows=2,cols=2]", "data.shift_px=2", "train.batch_size=8",
        "train.steps=40", "train.save_every=5", "train.log_every=5", "policy.head.hidden_channels=16",
        "policy.backbone.channels=16", "train.ema_decay=0.95"]     # the exported EMA must resume exactly too
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}   # same float reductions in every run


def finetune(out, *extra):
    return subprocess.Popen([sys.executable, str(ROOT / "finetune.py"), *ARGS, f"output_dir={out}", *extra],
                            cwd=ROOT, env=ENV, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def kill_when(proc: subprocess.Popen, ready, folder: Path, pattern: str) -> None:
    """SIGKILL `proc` once `ready()` holds, while a temp folder matching `pattern` is inside `folder`: it is
    stopped (SIGSTOP) first and the folder looked for again, so the kill is known to land inside the write."""
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        if ready() and any(folder.glob(pattern)):
            proc.send_signal(signal.SIGSTOP)
            if any(folder.glob(pattern)):
                proc.kill()
                break
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.001)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"{pattern} never seen in {folder}: the run ended first"
    assert any(folder.glob(pattern))            # the half-written folder the next run has to clean up


@pytest.mark.slow
def test_sigkill_between_and_during_checkpoints_and_export_then_resume_is_exact(tmp_path):
    full = finetune(tmp_path / "full")
    assert full.communicate(timeout=300) and full.returncode == 0

    out = tmp_path / "part"
    ckpts, last = out / "checkpoints", out / "checkpoints" / "last"
    reached = lambda step: lambda: last.exists() and last.read_text() >= f"{step:07d}"   # noqa: E731
    kill_when(finetune(out), reached(15), ckpts, "[0-9]*")             # between checkpoints
    assert not (out / "policy").exists()
    kill_when(finetune(out, "train.resume=true"), reached(25), ckpts, ".tmp-*")   # inside a checkpoint write
    kill_when(finetune(out, "train.resume=true"), reached(40), out, ".policy.*")  # inside the final export
    assert not (out / "policy").exists()

    resumed = finetune(out, "train.resume=true")
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr[-2000:]
    assert "[resume] from" in stdout and "at step 40\n" in stdout   # the final step was checkpointed
    assert not list(ckpts.glob(".tmp-*")) and not list(out.glob(".policy.*"))    # leftovers cleaned up
    a = load_file(tmp_path / "full" / "policy" / "model.safetensors")
    b = load_file(out / "policy" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    logged = (out / "metrics.csv").read_text()
    assert logged == (tmp_path / "full" / "metrics.csv").read_text()     # each step once, same numbers
