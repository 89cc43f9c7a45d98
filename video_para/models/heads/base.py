"""Head interface and registry.

A head is built as ``HEADS.build(config, in_channels, n_window, image_size, stats)`` and has
  * ``forward(features) -> dict`` of raw outputs (logits),
  * ``loss(outputs, batch) -> dict`` of named loss terms plus their weighted sum under 'loss',
  * ``decode(outputs) -> Decoded``.
Targets in ``batch``: 'target_pixels' (B, N_W, 2) image pixels, 'target_height' (B, N_W) height
above the support plane, 'target_gripper' (B, N_W), 'target_xyz' (B, N_W, 3) world.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...config import Registry


@dataclass
class HeadConfig:
    type: str = "para"


HEADS = Registry("head", HeadConfig)


@dataclass
class Decoded:
    """What every head decodes to; PARA fills pixels/heights (lifted later), regression fills xyz."""

    gripper: torch.Tensor                    # (B, N_W)
    pixels: torch.Tensor | None = None       # (B, N_W, 2) image pixels
    heights: torch.Tensor | None = None      # (B, N_W) above the support plane
    xyz: torch.Tensor | None = None          # (B, N_W, 3) world
    heatmaps: torch.Tensor | None = None     # (B, N_W, H_out, W_out) probabilities, for overlays
