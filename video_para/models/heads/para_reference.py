"""Naive PARA head loss that materialises the full (B, N_W, N_H, H, W) volume.

Kept as the executable specification of ParaHead.loss (tests compare against it) and as the
baseline of `python -m video_para.bench heads`. Never used for training.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .para import ParaHead


def naive_loss(head: ParaHead, features: torch.Tensor, batch: dict) -> dict:
    x = head.trunk(features)
    up = lambda t: F.interpolate(t, size=head.out_size, mode="bilinear", align_corners=False)  # noqa: E731
    heat = up(head.heatmap(x))                                         # (B, N_W, H, W)
    B, N, H, W = heat.shape
    height = up(head.height(x)).view(B, N, -1, H, W)                   # the big volume
    grip = up(head.gripper(x)).view(B, N, -1, H, W)
    Hi, Wi = head.image_size
    cells = {"target": batch["target_pixels"]}
    if "start_pixel" in batch:
        cells["current"] = batch["start_pixel"][:, None].expand(B, N, 2)
    col, row = ({k: (px[..., i] * (size / image)).floor().long() for k, px in cells.items()}
                for i, size, image in ((0, W, Wi), (1, H, Hi)))
    b = torch.arange(B)[:, None].expand(B, N)
    n = torch.arange(N)[None, :].expand(B, N)
    at_h, at_g = head.cfg.height_at, head.cfg.gripper_at
    terms = {
        "heatmap": F.cross_entropy(heat.flatten(2).flatten(0, 1), (row["target"] * W + col["target"]).flatten()),
        "height": F.cross_entropy(height[b, n, :, row[at_h], col[at_h]].flatten(0, 1),
                                  head.height_bins.encode(batch["target_height"]).flatten()),
        "gripper": F.cross_entropy(grip[b, n, :, row[at_g], col[at_g]].flatten(0, 1),
                                   head.gripper_bins.encode(batch["target_gripper"]).flatten()),
    }
    c = head.cfg
    terms["loss"] = c.heatmap_weight * terms["heatmap"] + c.height_weight * terms["height"] \
        + c.gripper_weight * terms["gripper"]
    return terms
