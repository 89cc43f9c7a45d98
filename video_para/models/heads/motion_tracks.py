"""Motion Tracks baseline (the PARA paper's second): predict the end effector's 2D track over the N_W
steps, then regress world xyz + gripper from the tracked positions alone.

The track is a spatial soft-argmax of per-step heatmap logits on the feature grid (differentiable,
an L1 loss on pixels normalised by the image size). The regressor is the global-MLP head's MLP, with
its normalisation, loss and decoding, fed the normalised track instead of pooled features. It sees
the predicted track detached: it learns from what it gets at inference, and its loss cannot pull the
track off the end effector's pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import HEADS, Decoded
from .global_mlp import GlobalMLPHead, GlobalMLPHeadConfig
from .para import conv_trunk


@dataclass
class MotionTracksHeadConfig(GlobalMLPHeadConfig):
    type: str = "motion_tracks"
    hidden_channels: int = 128
    num_conv_layers: int = 1          # 3x3 conv + GELU layers before the per-step heatmap logits
    track_weight: float = 1.0


class MotionTracksHead(GlobalMLPHead):
    def __init__(self, cfg: MotionTracksHeadConfig, in_channels: int, n_window: int, image_size, stats):
        super().__init__(cfg, 2 * n_window, n_window, image_size, stats)     # the MLP reads the track
        self.image_size = tuple(image_size)
        self.trunk, c = conv_trunk(in_channels, cfg.hidden_channels, cfg.num_conv_layers)
        self.heatmap = nn.Conv2d(c, n_window, 1)

    def forward(self, features: torch.Tensor) -> dict:
        logits = self.heatmap(self.trunk(features))
        (h, w), (H, W) = logits.shape[-2:], self.image_size
        prob = logits.flatten(2).softmax(-1).view(logits.shape)
        u = prob.sum(-2) @ ((torch.arange(w, device=prob.device, dtype=prob.dtype) + 0.5) * (W / w))
        v = prob.sum(-1) @ ((torch.arange(h, device=prob.device, dtype=prob.dtype) + 0.5) * (H / h))
        pixels = torch.stack([u, v], -1)                                                    # (B, N_W, 2)
        track = pixels.detach() * pixels.new_tensor([2 / W, 2 / H]) - 1
        return {"pixels": pixels, "action": self.mlp(track.flatten(1)).view(-1, self.n_window, 4)}

    def loss(self, out: dict, batch: dict) -> dict:
        terms = super().loss(out, batch)
        size = out["pixels"].new_tensor(self.image_size[::-1])
        terms["track"] = F.l1_loss(out["pixels"] / size, batch["target_pixels"] / size)
        terms["loss"] = terms["loss"] + self.cfg.track_weight * terms["track"]
        return terms

    @torch.no_grad()
    def decode(self, out: dict, start_pixel: torch.Tensor | None = None) -> Decoded:
        dec = super().decode(out)
        dec.pixels = out["pixels"]
        return dec


@HEADS.register("motion_tracks", MotionTracksHeadConfig)
def build_motion_tracks(cfg, in_channels, n_window, image_size, stats):
    return MotionTracksHead(cfg, in_channels, n_window, image_size, stats)
