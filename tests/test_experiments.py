import csv
import math

import pytest

from video_para.config import CONFIG_ROOT, load_config, to_dict
from video_para.experiment import ExperimentConfig
from video_para.models import Policy
from video_para.training.cli import finetune

EXPERIMENTS = sorted(p.stem for p in (CONFIG_ROOT / "experiment").glob("*.yaml"))
# the new DINO presets stay in the fast suite; the others also train in test_training/test_pointtrack
TINY = [pytest.param(n, marks=[] if n.startswith("tiny_dino") else pytest.mark.slow)
        for n in EXPERIMENTS if n.startswith("tiny_")]
# what each preset is: backbone type (/ its architecture preset, if not the full size), head, training
# stage, env. A new preset adds its line here.
PRESETS = {
    "dino_global_mlp": ("dino", "global_mlp", "finetune", "tabletop"),
    "dino_para": ("dino", "para", "finetune", "tabletop"),
    "libero_dino_global_mlp": ("dino", "global_mlp", "finetune", "libero"),
    "libero_dino_para": ("dino", "para", "finetune", "libero"),
    "libero_svd_global_mlp": ("svd", "global_mlp", "finetune", "libero"),
    "libero_svd_pretrain": ("svd", "para", "diffusion", "libero"),
    "libero_svd_two_stage": ("svd", "para", "finetune", "libero"),
    "libero_tiny_global_mlp": ("tiny", "global_mlp", "finetune", "libero"),
    "libero_tiny_para": ("tiny", "para", "finetune", "libero"),
    "libero_viewpoint_dino_global_mlp": ("dino", "global_mlp", "finetune", "libero"),
    "libero_viewpoint_dino_para": ("dino", "para", "finetune", "libero"),
    "libero_viewpoint_svd_global_mlp": ("svd", "global_mlp", "finetune", "libero"),
    "libero_viewpoint_svd_pretrain": ("svd", "para", "diffusion", "libero"),
    "libero_viewpoint_svd_two_stage": ("svd", "para", "finetune", "libero"),
    "pointtrack_finetune": ("svd", "para", "finetune", "tabletop"),
    "pointtrack_pretrain": ("svd", "para", "pointtrack", "tabletop"),
    "so100_tiny_global_mlp": ("tiny", "global_mlp", "finetune", "so100_sim"),
    "so100_tiny_para": ("tiny", "para", "finetune", "so100_sim"),
    "svd_frozen": ("svd", "para", "finetune", "tabletop"),
    "svd_global_mlp": ("svd", "global_mlp", "finetune", "tabletop"),
    "svd_joint_from_scratch": ("svd", "para", "finetune", "tabletop"),
    "svd_pretrain": ("svd", "para", "diffusion", "tabletop"),
    "svd_two_stage": ("svd", "para", "finetune", "tabletop"),
    "tiny_dino_global_mlp": ("dino/tiny", "global_mlp", "finetune", "tabletop"),
    "tiny_dino_para": ("dino/tiny", "para", "finetune", "tabletop"),
    "tiny_global_mlp": ("tiny", "global_mlp", "finetune", "tabletop"),
    "tiny_motion_tracks": ("tiny", "motion_tracks", "finetune", "tabletop"),
    "tiny_para": ("tiny", "para", "finetune", "tabletop"),
    "tiny_pointtrack_finetune": ("tiny", "para", "finetune", "tabletop"),
    "tiny_pointtrack_pretrain": ("tiny", "para", "pointtrack", "tabletop"),
    "tiny_svd_autoencoder": ("svd/tiny", "para", "autoencoder", "tabletop"),
    "tiny_svd_frozen": ("svd/tiny", "para", "finetune", "tabletop"),
    "tiny_svd_global_mlp": ("svd/tiny", "global_mlp", "finetune", "tabletop"),
    "tiny_svd_joint_from_scratch": ("svd/tiny", "para", "finetune", "tabletop"),
    "tiny_svd_pretrain": ("svd/tiny", "para", "diffusion", "tabletop"),
    "tiny_svd_two_stage": ("svd/tiny", "para", "finetune", "tabletop"),
}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_config_loads_and_is_what_its_name_says(name):
    cfg = load_config(ExperimentConfig, [f"experiment={name}"])
    assert cfg.output_dir == f"outputs/{name}"          # no two presets write (and resume) the same run folder
    backbone = "/".join(filter(None, [cfg.policy.backbone.type, to_dict(cfg.policy.backbone).get("preset")]))
    assert (backbone, cfg.policy.head.type, cfg.train.stage, cfg.env.type) == PRESETS[name]


@pytest.mark.parametrize("name", TINY)
def test_every_tiny_experiment_builds_and_trains_one_step(name, tmp_path):
    """As configured (image size, backbone, head, stage, clips, overlay), on two demos and without its
    stage-1 checkpoint (init_from is tested in test_training / test_pointtrack)."""
    cfg = load_config(ExperimentConfig, [f"experiment={name}", "data.protocol_overrides=[rows=2,cols=2]",
                                         "train.steps=1", "train.batch_size=2", "train.init_from=",
                                         f"output_dir={tmp_path}"])
    finetune(cfg, progress=False)
    row, = csv.DictReader(open(tmp_path / "metrics.csv"))
    assert row["step"] == "1" and math.isfinite(float(row["loss"]))
    assert Policy.from_pretrained(tmp_path / "policy").config == cfg.policy


@pytest.mark.parametrize("baseline", ["tiny_global_mlp", "tiny_motion_tracks"])
def test_quickstart_baselines_differ_from_para_only_in_the_head(baseline):
    para = load_config(ExperimentConfig, ["experiment=tiny_para", "output_dir=x"])
    other = load_config(ExperimentConfig, [f"experiment={baseline}", "output_dir=x"])
    assert para.policy.backbone == other.policy.backbone and para.data == other.data and para.train == other.train
    assert para.env == other.env and para.eval == other.eval and para.seed == other.seed


def test_incompatible_sizes_and_typos_are_errors():
    with pytest.raises(ValueError, match=r"n_frames=3 must equal data.clip_frames=2"):
        load_config(ExperimentConfig, ["experiment=tiny_svd_two_stage", "data.clip_frames=2"])
    load_config(ExperimentConfig, ["experiment=tiny_para", "data.clip_frames=2"])   # tiny takes no clip: any length
    with pytest.raises(ValueError, match="does not match the env"):
        load_config(ExperimentConfig, ["experiment=tiny_para", "policy.image_height=64"])
    with pytest.raises(ValueError, match="stpes"):
        load_config(ExperimentConfig, ["experiment=tiny_para", "train.stpes=3"])
