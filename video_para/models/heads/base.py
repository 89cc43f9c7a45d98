"""Head interface and registry.

A head is built as ``HEADS.build(config, in_channels, n_window, image_size, stats)`` and has
  * ``forward(features) -> dict`` of raw outputs (logits),
  * ``loss(outputs, batch) -> dict`` of named loss terms plus their weighted sum under 'loss',
  * ``decode(outputs, start_pixel=None) -> Decoded`` (start_pixel (B, 2): the current EE pixel, for
    heads that read something there).
Targets in ``batch``: 'target_pixels' (B, N_W, 2) image pixels, 'target_height' (B, N_W) height
above the support plane, 'target_gripper' (B, N_W), 'target_xyz' (B, N_W, 3) world.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ...config import Registry


@dataclass
class HeadConfig:
    type: str = "para"
    # fields that say how the head is trained, not what it is: a saved head differing only in these
    # still transfers (train.init_parts)
    TRAINING_ONLY: ClassVar[tuple[str, ...]] = ()
    # parameter-name prefixes of the head's heatmap part, () for none: it does not depend on data
    # statistics, so point-track pretraining trains it and train.init_parts 'heatmap' transfers it
    HEATMAP: ClassVar[tuple[str, ...]] = ()

    def heatmap_part(self, needed_by: str) -> tuple[str, ...]:
        """HEATMAP; a head without one is a ValueError naming `needed_by` and the heads that have one."""
        if not self.HEATMAP:
            raise ValueError(f"{needed_by} needs a head with a heatmap (policy.head.type={'|'.join(heatmap_heads())}), "
                             f"not '{self.type}'")
        return self.HEATMAP


HEADS = Registry("head", HeadConfig)


def heatmap_heads() -> list[str]:
    """The registered head types with a heatmap part."""
    return [name for name in HEADS.names() if HEADS.config_class(name).HEATMAP]


class Head(nn.Module):
    """Base class: subclasses set `cfg` and implement forward, loss and decode (module docstring)."""

    cfg: HeadConfig

    def freeze_for(self, stage: str) -> None:
        """Stop gradients to what `stage`'s loss never reaches: point-track pretraining trains the
        heatmap part only (a dot's 2D track has no height or gripper labels)."""
        if stage == "pointtrack":
            heatmap = self.cfg.heatmap_part("stage 'pointtrack'")
            for name, p in self.named_parameters():
                if not name.startswith(heatmap):
                    p.requires_grad_(False)


@dataclass
class Decoded:
    """What every head decodes to; PARA fills pixels/heights (lifted later), regression fills xyz."""

    gripper: torch.Tensor                    # (B, N_W)
    pixels: torch.Tensor | None = None       # (B, N_W, 2) image pixels
    heights: torch.Tensor | None = None      # (B, N_W) above the support plane
    xyz: torch.Tensor | None = None          # (B, N_W, 3) world
    heatmaps: torch.Tensor | None = None     # (B, N_W, H_out, W_out) probabilities, for overlays
