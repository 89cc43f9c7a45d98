"""Two real processes on CPU (gloo) through `accelerate launch` — see DESIGN.md for why the flags
are exactly these (`--cpu --num_processes 2` silently runs one process)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from video_para.models import Policy

COMMON = ["data.protocol_overrides=[rows=2,cols=2]", "train.steps=6", "train.log_every=2"]
SIZE = ["env.image_height={0}", "env.image_width={0}", "policy.image_height={0}", "policy.image_width={0}"]
# DDP needs every trained parameter in every step's graph: these cover a frozen head (SVD stage 1), a
# frozen backbone, and a ViT with an unused masked-image-modelling token
PRESETS = {
    "tiny_para": [*(a.format(32) for a in SIZE), "train.batch_size=4", "policy.head.hidden_channels=16",
                  "policy.backbone.channels=16", "data.shift_px=2"],
    "tiny_svd_pretrain": ["train.batch_size=2"],
    "tiny_svd_frozen": ["train.batch_size=2"],
    "tiny_dino_para": [*(a.format(56) for a in SIZE), "train.batch_size=4", "data.shift_px=2"],
}


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_two_process_ddp_on_cpu_keeps_ranks_identical(tmp_path, preset):
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           str(Path(__file__).with_name("ddp_worker.py")), f"experiment={preset}", *COMMON, *PRESETS[preset],
           f"output_dir={tmp_path}"]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr[-3000:]
    info = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [i["world"] for i in info] == [2, 2]                # both ranks ran, in one process group
    assert info[0]["first"] != info[1]["first"]                # on different shards of the data
    a, b = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    for k in a:
        assert torch.equal(a[k], b[k]), k                      # gradients were averaged: ranks agree
    exported = Policy.from_pretrained(tmp_path / "policy").state_dict()
    assert all(torch.equal(exported[k], a[k]) for k in a)
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 4   # main rank only: header + 3 rows
