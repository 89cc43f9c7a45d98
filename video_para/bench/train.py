"""Training throughput of the tiny presets on CPU, 1 process vs 2 (real DDP through accelerate).

Each configuration runs finetune.py once in a fresh process; the trainer times its own loop from the
end of the first optimizer step (out/throughput.json), so start-up, demo generation, warm-up and
export are excluded. samples/s counts the global batch (train.batch_size per process x processes).
By default both configurations get the machine's cores (1 process x all threads, or 2 x half each);
--threads fixes the torch threads per process."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DDP = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
       "--mixed_precision", "no", "--dynamo_backend", "no"]     # DESIGN.md: the CPU DDP command that works


def _throughput(procs: int, threads: int, args: list[str], steps: int, out: Path) -> dict:
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, *(DDP if procs == 2 else []), str(ROOT / "finetune.py"), *args,
           f"train.steps={steps}", f"train.log_every={steps}", f"output_dir={out}"]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{run.stderr[-2000:]}")
    t = json.loads((out / "throughput.json").read_text())
    if t["processes"] != procs:         # the launch fell back to independent single-process runs
        raise RuntimeError(f"{' '.join(cmd)} trained with {t['processes']} process(es), not {procs}")
    return t


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m video_para.bench train")
    ap.add_argument("--presets", nargs="+", default=["tiny_para", "tiny_global_mlp"])
    ap.add_argument("--steps", type=int, default=20, help="optimizer steps per run (the first is not timed)")
    ap.add_argument("--procs", nargs="+", type=int, default=[1, 2], choices=[1, 2])
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads per process (0: cores / processes). On a machine shared with other "
                         "jobs, 1 can be several times faster: spinning intra-op threads lose their cores")
    ap.add_argument("overrides", nargs="*", help="key=value applied to every preset")
    a = ap.parse_args(argv)
    print(f"CPU threads: {os.cpu_count()}; one run each, on whatever else the machine is doing")
    print(f"{'preset':<28}{'procs':>6}{'threads':>8}{'batch':>7}{'steps':>7}{'steps/s':>10}{'samples/s':>11}")
    for preset in a.presets:
        for procs in a.procs:
            threads = a.threads or max(1, (os.cpu_count() or 2) // procs)
            with tempfile.TemporaryDirectory() as tmp:
                t = _throughput(procs, threads, [f"experiment={preset}", *a.overrides], a.steps, Path(tmp))
            rate = t["steps"] / t["seconds"]
            samples = rate * t["batch_per_process"] * t["processes"]
            print(f"{preset:<28}{procs:>6}{threads:>8}{t['batch_per_process']:>7}{t['steps']:>7}{rate:>10.2f}{samples:>11.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
