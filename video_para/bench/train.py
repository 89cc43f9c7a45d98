"""Training throughput of the tiny presets on CPU, 1 process vs 2 (real DDP through accelerate).

Each configuration runs finetune.py twice, for N and 2N steps, in fresh processes; the difference of
the two wall times is the time of N training steps, free of start-up, data generation and export.
samples/s counts the global batch (train.batch_size per process x processes)."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..config import load_config
from ..training.config import ExperimentConfig

ROOT = Path(__file__).resolve().parents[2]
DDP = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
       "--mixed_precision", "no", "--dynamo_backend", "no"]     # DESIGN.md: the CPU DDP command that works


def _wall(procs: int, args: list[str], steps: int, out: Path) -> float:
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "HF_HUB_OFFLINE": "1"}
    if procs == 2:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 2) // 2))
    launcher = DDP if procs == 2 else []
    cmd = [sys.executable, *launcher, str(ROOT / "finetune.py"), *args, f"train.steps={steps}",
           f"train.log_every={steps}", f"output_dir={out}"]
    t0 = time.perf_counter()
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{run.stderr[-2000:]}")
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m video_para.bench train")
    ap.add_argument("--presets", nargs="+", default=["tiny_para", "tiny_global_mlp"])
    ap.add_argument("--steps", type=int, default=20, help="N: runs of N and 2N steps are timed")
    ap.add_argument("--procs", nargs="+", type=int, default=[1, 2], choices=[1, 2])
    ap.add_argument("overrides", nargs="*", help="key=value applied to every preset")
    a = ap.parse_args(argv)
    print(f"CPU threads: {os.cpu_count()}; figures from one run each on whatever else the machine is doing")
    print(f"{'preset':<28}{'procs':>6}{'batch':>7}{'steps/s':>10}{'samples/s':>11}")
    for preset in a.presets:
        args = [f"experiment={preset}", *a.overrides]
        batch = load_config(ExperimentConfig, args).train.batch_size
        for procs in a.procs:
            with tempfile.TemporaryDirectory() as tmp:
                short = _wall(procs, args, a.steps, Path(tmp) / "short")
                long = _wall(procs, args, 2 * a.steps, Path(tmp) / "long")
            rate = a.steps / max(long - short, 1e-9)
            print(f"{preset:<28}{procs:>6}{batch:>7}{rate:>10.2f}{rate * batch * procs:>11.1f}", flush=True)


if __name__ == "__main__":
    main()
