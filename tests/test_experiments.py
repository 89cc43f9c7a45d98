from pathlib import Path

import pytest

from video_para.config import CONFIG_ROOT, load_config
from video_para.training.config import ExperimentConfig

EXPERIMENTS = sorted(p.stem for p in (CONFIG_ROOT / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_config_loads_and_validates(name):
    cfg = load_config(ExperimentConfig, [f"experiment={name}"])
    assert cfg.policy.head.type in ("para", "global_mlp")


def test_quickstart_pair_differs_only_in_the_head():
    para = load_config(ExperimentConfig, ["experiment=tiny_para", "output_dir=x"])
    mlp = load_config(ExperimentConfig, ["experiment=tiny_global_mlp", "output_dir=x"])
    assert para.policy.backbone == mlp.policy.backbone and para.data == mlp.data and para.train == mlp.train
    assert para.env == mlp.env and para.eval == mlp.eval and para.seed == mlp.seed


def test_incompatible_sizes_and_typos_are_errors():
    with pytest.raises(ValueError, match="does not match the env"):
        load_config(ExperimentConfig, ["experiment=tiny_para", "policy.image_height=64"])
    with pytest.raises(ValueError, match="stpes"):
        load_config(ExperimentConfig, ["experiment=tiny_para", "train.stpes=3"])
