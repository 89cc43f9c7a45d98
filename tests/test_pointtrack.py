"""Point-track pretraining: the sim records robot masks, data.overlay turns demos into robot-free
videos with an orange dot at the EE, stage=pointtrack trains the heatmap only, and fine-tuning starts
from its backbone and heatmap head."""
import csv

import numpy as np
import pytest
import torch
from accelerate.utils import set_seed

from video_para.config import load_config
from video_para.data.overlay import ORANGE
from video_para.data.sources import build_dataset, with_point_track
from video_para.envs.expert import run_expert
from video_para.envs.tabletop import TabletopConfig, TabletopEnv
from video_para.experiment import ExperimentConfig
from video_para.models import Policy
from video_para.training.cli import finetune, init_from


def _robot_coloured(images):
    """Pixels with the sim robot's colours under any shading (the blue arm, the orange fingers), not the dot."""
    rgb = images.astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return ((b - np.maximum(r, g) > 40) | ((r - b > 100) & (g < r - 60))) & ~(rgb == ORANGE).all(-1)


def test_overlay_removes_the_robot_and_puts_the_dot_on_the_projected_ee():
    env = TabletopEnv(TabletopConfig(image_height=64, image_width=80))
    ep, ok = run_expert(env, {"bowl_xy": [0.0, 0.15]}, seed=0, index=3)
    track = ep.cameras["front"]
    assert ok and track.masks.shape == track.images.shape[:3] and track.masks.dtype == bool
    env.reset({"bowl_xy": [0.0, 0.15]}, 0)
    np.testing.assert_array_equal(track.masks[0], env.render()[1])      # the mask of the rendered frame
    assert _robot_coloured(track.images).sum() > 20 * len(ep)           # the check below can fail

    radius = 2.5
    out = with_point_track(ep, radius, ORANGE).cameras["front"].images
    vv, uu = np.mgrid[0:64, 0:80] + 0.5
    for t in range(len(ep)):
        u, v = track.camera(t).project(ep.ee_pos[t])
        dot = (uu - u) ** 2 + (vv - v) ** 2 <= radius ** 2
        assert not _robot_coloured(out[t])[~dot].any(), f"frame {t}: robot pixels left"
        assert (out[t][dot] == ORANGE).all()
        rows, cols = np.nonzero((out[t] == ORANGE).all(-1) & dot)
        assert abs(cols.mean() + 0.5 - u) < 0.5 and abs(rows.mean() + 0.5 - v) < 0.5   # centred on the EE
        np.testing.assert_array_equal(out[t][~track.masks[t] & ~dot], track.images[t][~track.masks[t] & ~dot])

    track.masks = track.masks[:, :5]
    with pytest.raises(ValueError, match="episode 3: camera 'front' masks are"):
        ep.validate()
    track.masks = None
    with pytest.raises(ValueError, match="no robot masks for episode 3"):
        with_point_track(ep, radius, ORANGE)


SMALL = ["env.image_height=32", "env.image_width=32", "policy.image_height=32", "policy.image_width=32",
         "policy.head.hidden_channels=16", "policy.backbone.channels=16", "data.shift_px=2", "data.overlay_radius_px=2",
         "train.batch_size=8", "train.log_every=5"]


def test_tiny_pointtrack_pretrain_then_finetune(tmp_path):
    pre_cfg = load_config(ExperimentConfig, ["experiment=tiny_pointtrack_pretrain", *SMALL, "train.steps=10",
                                             "data.protocol_overrides=[rows=3,cols=3,train=all]",
                                             f"output_dir={tmp_path / 'pre'}"])
    data = build_dataset(pre_cfg.data, pre_cfg.env, pre_cfg.policy.n_window, progress=False)
    pre = finetune(pre_cfg, dataset=data, progress=False)
    header = open(tmp_path / "pre" / "metrics.csv").readline().strip().split(",")
    assert "heatmap" in header and "height" not in header and "gripper" not in header
    set_seed(pre_cfg.seed)                           # the initial weights of that run
    init = Policy(pre_cfg.policy, data.stats())
    assert torch.equal(pre.head.height.weight, init.head.height.weight)      # no bins trained: no labels
    assert not torch.equal(pre.head.heatmap.weight, init.head.heatmap.weight)

    ft_args = ["experiment=tiny_pointtrack_finetune", *SMALL, "train.steps=5", f"output_dir={tmp_path / 'ft'}",
               f"train.init_from={tmp_path / 'pre' / 'policy'}"]
    ft_cfg = load_config(ExperimentConfig, ft_args)
    ft_data = build_dataset(ft_cfg.data, ft_cfg.env, ft_cfg.policy.n_window, progress=False)
    assert len(ft_data.episodes) == 10                # the paper fine-tunes with 10 demos
    assert not _robot_coloured(data.episodes[0].cameras["front"].images).any()
    assert _robot_coloured(ft_data.episodes[0].cameras["front"].images).any()   # fine-tuning sees the robot
    fresh = Policy(ft_cfg.policy, ft_data.stats())
    init_from(fresh, tmp_path / "pre" / "policy", ft_cfg.train.init_parts)
    saved = pre.state_dict()
    for k, v in fresh.state_dict().items():
        transferred = k.startswith(("backbone.", "head.trunk.", "head.heatmap."))
        assert torch.equal(v, saved[k]) == transferred, k
    finetune(ft_cfg, dataset=ft_data, progress=False)
    rows = list(csv.DictReader(open(tmp_path / "ft" / "metrics.csv")))
    assert rows[-1]["step"] == "5" and {"heatmap", "height", "gripper"} <= set(rows[0])
    with pytest.raises(ValueError, match="needs policy.head.type=para and data.overlay=true"):
        load_config(ExperimentConfig, ["experiment=tiny_pointtrack_pretrain", "data.overlay=false"])
