"""finetune.py and pretrain.py under `accelerate launch` with two real CPU processes (gloo), launched the
way the README documents (DESIGN.md says why exactly these flags: `--cpu --num_processes 2` silently runs
one process)."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from video_para.config import load_config
from video_para.experiment import ExperimentConfig
from video_para.models import Policy
from video_para.training.trainer import param_digest, warmup_cosine

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
          "--num_machines", "1", "--dynamo_backend", "no"]
SIZE = ["env.image_height={0}", "env.image_width={0}", "policy.image_height={0}", "policy.image_width={0}"]
COMMON = ["data.protocol_overrides=[rows=2,cols=2]", "train.steps=6", "train.log_every=2", "train.warmup_steps=3"]
# DDP needs every trained parameter in every step's graph: a ViT with an unused masked-image-modelling
# token here, a frozen head (SVD stage 1) in the pretrain test
PRESETS = {
    "tiny_para": [*(a.format(32) for a in SIZE), "policy.head.hidden_channels=16", "policy.backbone.channels=16",
                  "data.shift_px=2"],
    "tiny_dino_para": [*(a.format(56) for a in SIZE), "data.shift_px=2"],
}


def run(cmd: list[str], env: dict = ENV) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def check_one_ddp_run(done: subprocess.CompletedProcess, out: Path, stage: str, precision: str) -> dict:
    """Both processes in one process group, every message and the progress bar printed once, identical
    parameters on both ranks (those exported)."""
    info = json.loads((out / "run.json").read_text())
    assert info["accelerate"]["distributed_type"] == "DistributedType.MULTI_CPU"
    assert info["accelerate"]["num_processes"] == 2
    assert info["accelerate"]["mixed_precision"] == precision
    for message in (f"[{stage}] seed", "[data] ", f"[{stage}] policy saved"):
        assert done.stdout.count(message) == 1, (message, done.stdout)
    assert done.stderr.count("[train] 6/6") == 1, done.stderr[-2000:]    # a pipe: plain progress lines
    digests = info["param_sha256_per_process"]
    assert len(digests) == 2 and digests[0] == digests[1] == param_digest(Policy.from_pretrained(out / "policy"))
    return info


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_finetune_on_two_processes_is_one_run_with_twice_the_batch(tmp_path, preset):
    args = [f"experiment={preset}", *COMMON, *PRESETS[preset]]
    # the launcher asks for bf16; the experiment's explicit train.mixed_precision=no wins
    ddp = run([*LAUNCH, "--mixed_precision", "bf16", "finetune.py", *args, "train.batch_size=4",
               "train.mixed_precision=no", f"output_dir={tmp_path / 'ddp'}"])
    info = check_one_ddp_run(ddp, tmp_path / "ddp", "finetune", "no")
    assert info["accelerate"]["global_batch"] == 8
    one = run([sys.executable, "finetune.py", *args, "train.batch_size=8", f"output_dir={tmp_path / 'one'}"])
    rows = list(csv.DictReader(open(tmp_path / "ddp" / "metrics.csv")))
    single = list(csv.DictReader(open(tmp_path / "one" / "metrics.csv")))
    assert [r["step"] for r in rows] == [r["step"] for r in single] == ["2", "4", "6"]
    # 2 x 4 windows per step are the 8 windows one process takes, so the logged (all-process mean)
    # losses follow the single-process run up to float summation order
    for r, s in zip(rows, single):
        assert float(r["loss"]) == pytest.approx(float(s["loss"]), rel=1e-3, abs=1e-5), (r, s)
    # the lr follows the optimizer steps (a prepared scheduler would step twice per step on 2 processes)
    cfg = load_config(ExperimentConfig, args)
    factor = warmup_cosine(cfg.train.warmup_steps, cfg.train.steps)
    for r in rows:
        step = int(r["step"])
        assert float(r["lr_head"]) == pytest.approx(cfg.train.lr_head * factor(step - 1), rel=1e-6)
        assert float(r["lr_backbone"]) == pytest.approx(cfg.train.lr_backbone * factor(step - 1), rel=1e-6)


@pytest.mark.slow
def test_pretrain_diffusion_stage_on_two_processes_takes_the_launchers_precision(tmp_path):
    out = tmp_path / "s1"
    done = run([*LAUNCH, "--mixed_precision", "bf16", "pretrain.py", "experiment=tiny_svd_pretrain", *COMMON,
                "train.batch_size=2", "train.init_from=", f"output_dir={out}"])     # a random-init VAE will do
    info = check_one_ddp_run(done, out, "diffusion", "bf16")      # tiny_svd_pretrain sets no precision
    assert info["accelerate"]["global_batch"] == 4
    assert [r["step"] for r in csv.DictReader(open(out / "metrics.csv"))] == ["2", "4", "6"]


@pytest.mark.slow
def test_svd_joint_step_without_the_diffusion_loss_leaves_no_unused_parameter(tmp_path):
    """Without the aux loss the UNet after the last tapped block gets no gradient: it must be frozen, or
    DDP (find_unused_parameters off) fails at the second step."""
    out = tmp_path / "s2"
    done = run([*LAUNCH, "--mixed_precision", "no", "finetune.py", "experiment=tiny_svd_two_stage", *COMMON,
                "train.batch_size=2", "train.init_from=", "policy.backbone.aux_loss=false", f"output_dir={out}"])
    check_one_ddp_run(done, out, "finetune", "no")
    assert "aux" not in open(out / "metrics.csv").readline()


@pytest.mark.slow
def test_a_nan_loss_stops_both_processes_with_the_same_message(tmp_path):
    # an absurd learning rate blows the weights up after the first step
    done = subprocess.run([*LAUNCH, "--mixed_precision", "no", "finetune.py", "experiment=tiny_para", *COMMON,
                           *PRESETS["tiny_para"], "train.batch_size=4", "train.warmup_steps=0", "train.lr_head=1e30",
                           f"output_dir={tmp_path}"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert done.returncode != 0
    messages = [line.split("FloatingPointError: ")[1] for line in done.stderr.splitlines() if "FloatingPointError: " in line]
    assert len(messages) == 2 and messages[0] == messages[1] and messages[0].startswith("step "), done.stderr[-3000:]
    assert not (tmp_path / "policy").exists()


@pytest.mark.slow
def test_deepspeed_zero2_config_prepares_and_trains_on_cpu(tmp_path):
    """ZeRO-2 through configs/accelerate/deepspeed_zero2.yaml: the micro batch DeepSpeed needs comes from
    train.batch_size (the loader's batch_size is None). One process: on CPU, Accelerate's state stays
    non-distributed under DeepSpeed while DeepSpeed itself sees the whole world, so two disagree."""
    pytest.importorskip("deepspeed", reason="the deepspeed extra is not installed")
    out = tmp_path / "zero2"
    env = {k: v for k, v in ENV.items() if k != "ACCELERATE_USE_CPU"}     # it would switch DeepSpeed off
    run([sys.executable, "-m", "accelerate.commands.launch", "--config_file", "configs/accelerate/deepspeed_zero2.yaml",
         "--num_processes", "1", "--mixed_precision", "no", "finetune.py", "experiment=tiny_para", *COMMON,
         *PRESETS["tiny_para"], "train.batch_size=4", "train.steps=2", f"output_dir={out}"], env)
    info = json.loads((out / "run.json").read_text())["accelerate"]
    assert info["distributed_type"] == "DistributedType.DEEPSPEED" and info["batch_per_process"] == 4
    assert (out / "policy" / "model.safetensors").exists()
