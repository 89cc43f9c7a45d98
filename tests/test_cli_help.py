"""-h/--help on every entry point: usage (and, where the command takes a config, the experiment presets and
config groups), exit status 0, and nothing written to the working directory."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ["finetune.py", "pretrain.py", "eval.py", "deploy.py", "-m video_para.suite", "-m video_para.quickstart",
          "-m video_para.data.generate", "-m video_para.so100.dryrun"]
OTHER = ["-m video_para.bench",
         *(f"-m video_para.bench {n}" for n in ("backbones", "data", "gpu", "heads", "libero", "sim", "train")),
         "-m video_para.so100.bench", "-m video_para.so100.calibrate", "-m video_para.so100.convert",
         "-m video_para.data.libero_hdf5"]


@pytest.mark.parametrize("command, flag", [(c, "--help") for c in CONFIG + OTHER]
                         + [("finetune.py", "-h"), ("-m video_para.bench", "-h")])
def test_help_prints_usage_exits_0_and_writes_nothing(tmp_path, command, flag):
    args = [str(ROOT / a) if a.endswith(".py") else a for a in command.split()]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, *args, flag], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("usage:"), out.stdout[:500]
    if command in CONFIG:
        assert "experiment presets" in out.stdout and "tiny_para" in out.stdout and "backbone: dino" in out.stdout
    assert list(tmp_path.iterdir()) == []
