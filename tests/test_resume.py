"""A real training process killed with SIGKILL between checkpoints, then resumed, ends with exactly
the parameters (EMA included) and the metrics log of an uninterrupted run."""
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


@pytest.mark.slow
def test_sigkill_between_checkpoints_then_resume_is_exact(tmp_path):
    full = finetune(tmp_path / "full")
    assert full.communicate(timeout=300) and full.returncode == 0

    victim = finetune(tmp_path / "part")
    last = tmp_path / "part" / "checkpoints" / "last"
    deadline = time.time() + 300
    while not (last.exists() and last.read_text() >= "0000015") and victim.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "part" / "policy").exists()

    resumed = finetune(tmp_path / "part", "train.resume=true")
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr[-2000:]
    assert "[resume] from" in stdout and "at step 0\n" not in stdout    # it continued, not restarted
    a = load_file(tmp_path / "full" / "policy" / "model.safetensors")
    b = load_file(tmp_path / "part" / "policy" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    logged = (tmp_path / "part" / "metrics.csv").read_text()
    assert logged == (tmp_path / "full" / "metrics.csv").read_text()     # each step once, same numbers
