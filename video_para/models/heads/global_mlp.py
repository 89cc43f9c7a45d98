"""ACT-style baseline: global average pool + MLP regressing N_W x (xyz, gripper), normalised by
dataset statistics. Decodes to world xyz directly, in the same `Decoded` structure as PARA."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..stats import Stats
from .base import HEADS, Decoded, Head, HeadConfig


@dataclass
class GlobalMLPHeadConfig(HeadConfig):
    type: str = "global_mlp"
    hidden_dim: int = 512
    num_layers: int = 2               # hidden layers
    dropout: float = 0.0
    loss: str = "l1"                  # l1 (ACT) | mse
    gripper_weight: float = 1.0
    TRAINING_ONLY = ("gripper_weight",)


class GlobalMLPHead(Head):
    def __init__(self, cfg: GlobalMLPHeadConfig, in_channels: int, n_window: int, image_size, stats: Stats):
        super().__init__()
        if cfg.loss not in ("l1", "mse"):
            raise ValueError(f"head.loss must be 'l1' or 'mse', got '{cfg.loss}'")
        self.cfg, self.n_window = cfg, n_window
        layers, c = [], in_channels
        for _ in range(cfg.num_layers):
            layers += [nn.Linear(c, cfg.hidden_dim), nn.GELU(), nn.Dropout(cfg.dropout)]
            c = cfg.hidden_dim
        self.mlp = nn.Sequential(*layers, nn.Linear(c, n_window * 4))
        # statistics are buffers: they travel in the state dict, so a checkpoint cannot meet the wrong ones
        self.register_buffer("mean", torch.tensor([*stats.xyz_mean, stats.gripper_mean], dtype=torch.float32))
        self.register_buffer("std", torch.tensor([*stats.xyz_std, stats.gripper_std], dtype=torch.float32))

    def forward(self, features: torch.Tensor) -> dict:
        return {"action": self.mlp(features.mean(dim=(2, 3))).view(-1, self.n_window, 4)}

    def loss(self, out: dict, batch: dict) -> dict:
        target = torch.cat([batch["target_xyz"], batch["target_gripper"][..., None]], -1)
        target = (target - self.mean) / self.std
        err = F.l1_loss if self.cfg.loss == "l1" else F.mse_loss
        pred = out["action"]
        terms = {"xyz": err(pred[..., :3], target[..., :3]), "gripper": err(pred[..., 3], target[..., 3])}
        terms["loss"] = terms["xyz"] + self.cfg.gripper_weight * terms["gripper"]
        return terms

    @torch.no_grad()
    def decode(self, out: dict, start_pixel: torch.Tensor | None = None) -> Decoded:
        action = out["action"] * self.std + self.mean
        return Decoded(gripper=action[..., 3], xyz=action[..., :3])


@HEADS.register("global_mlp", GlobalMLPHeadConfig)
def build_global_mlp(cfg, in_channels, n_window, image_size, stats):
    return GlobalMLPHead(cfg, in_channels, n_window, image_size, stats)
