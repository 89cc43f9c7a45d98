"""What a head or backbone declares about training: which of its parameters point-track pretraining
trains and train.init_parts transfers (its heatmap part), and which config fields say how it is
trained rather than what it is (TRAINING_ONLY)."""
import dataclasses

import pytest
import torch

from test_policy import STATS, tiny_config
from video_para.config import load_config
from video_para.experiment import ExperimentConfig
from video_para.models import Policy
from video_para.training.cli import init_from


def test_pointtrack_trains_only_the_heads_heatmap_part():
    policy = Policy(tiny_config(), STATS)
    policy.freeze_unused("pointtrack")
    trained = {n for n, p in policy.head.named_parameters() if p.requires_grad}
    assert trained == {"trunk.0.weight", "trunk.0.bias", "heatmap.weight", "heatmap.bias"}
    with pytest.raises(ValueError, match=r"stage 'pointtrack' needs a head with a heatmap \(policy.head.type=para\), "
                                         r"not 'global_mlp'"):
        Policy(tiny_config("global_mlp"), STATS).freeze_unused("pointtrack")


def test_init_parts_transfer_across_training_only_fields_and_name_what_differs(tmp_path):
    torch.manual_seed(0)
    source = Policy(tiny_config(), STATS).save_pretrained(tmp_path / "src")
    cfg = tiny_config()
    cfg.backbone.mode, cfg.head.height_weight = "frozen", 0.5            # how it trains, not what it is
    torch.manual_seed(1)
    policy = Policy(cfg, STATS)
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    init_from(policy, source, ["backbone", "heatmap"])
    saved = Policy.from_pretrained(source).state_dict()
    for k, v in policy.state_dict().items():
        transferred = k.startswith(("backbone.", "head.trunk.", "head.heatmap."))
        assert torch.equal(v, saved[k] if transferred else before[k]), k
    other = tiny_config()
    other.head = dataclasses.replace(other.head, hidden_channels=8)
    with pytest.raises(ValueError, match=r"its head differs from this run's in \['hidden_channels'\]"):
        init_from(Policy(other, STATS), source, ["heatmap"])
    with pytest.raises(ValueError, match=r"train.init_parts 'heatmap' needs a head with a heatmap .*not 'global_mlp'"):
        init_from(Policy(tiny_config("global_mlp"), STATS), source, ["heatmap"])


def test_experiment_refuses_heatmap_parts_of_a_head_without_one():
    with pytest.raises(ValueError, match=r"train.init_parts 'heatmap' needs a head with a heatmap \(policy.head.type=para\)"):
        load_config(ExperimentConfig, ["experiment=tiny_global_mlp", "train.init_parts=[backbone,heatmap]"])
    with pytest.raises(ValueError, match=r"train.stage=pointtrack needs policy.head.type=para and data.overlay=true"):
        load_config(ExperimentConfig, ["experiment=tiny_global_mlp", "train.stage=pointtrack", "data.overlay=true"])
