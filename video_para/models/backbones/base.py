"""Backbone interface and registry.

A backbone is built as ``BACKBONES.build(config, image_size, architecture=None)`` (image_size =
(H, W)) and maps ``forward(image (B,3,H,W) in [0,1], start_pixel (B,2) image pixels, clip=None) ->
BackboneOutput``. `clip` (B, T, 3, H, W) is the short video a video backbone may use for its
auxiliary loss; its frame 0 is `image`. The start keypoint (the current end-effector pixel) is added
as a learned embedding at its cell of the backbone's token/latent grid (keypoint_cells, add_at_cells);
heads never know which backbone they sit on.

A backbone wrapping a library model writes that model's architecture config with
`save_architecture(directory)`; built with `architecture=directory` it rebuilds from those configs
instead of loading `pretrained` weights, so a saved policy loads from its own folder alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ...config import Registry
from ...geometry import pixel_cells


@dataclass
class BackboneConfig:
    type: str = "tiny"
    mode: str = "coadapt"      # coadapt: trained (own learning rate) | frozen: no grads, eval mode
    # fields that say how the backbone is trained, not what it is: a frozen ablation or other loss
    # weights may start from the same pretrained weights (train.init_parts)
    TRAINING_ONLY: ClassVar[tuple[str, ...]] = ("mode",)

    def validate_mode(self) -> None:
        if self.mode not in ("coadapt", "frozen"):
            raise ValueError(f"backbone.mode must be 'coadapt' or 'frozen', got '{self.mode}'")

    def clip_frames(self) -> int | None:
        """Frames of the clip its auxiliary loss denoises (data.clip_frames must match); None: it uses no clip."""
        return None


BACKBONES = Registry("backbone", BackboneConfig)


@dataclass
class BackboneOutput:
    features: torch.Tensor                 # (B, C, h, w)
    aux_loss: torch.Tensor | None = None   # e.g. the SVD diffusion loss; None when not computed


class Backbone(nn.Module):
    """Base class: subclasses set `out_channels` and the start-keypoint embedding `keypoint` (C,) and
    implement `forward`."""

    out_channels: int
    keypoint: nn.Parameter

    def __init__(self, cfg: BackboneConfig, image_size):
        super().__init__()
        cfg.validate_mode()
        self.cfg, self.image_size = cfg, tuple(int(s) for s in image_size)

    def check_inputs(self, image: torch.Tensor, start_pixel: torch.Tensor) -> None:
        if image.ndim != 4 or image.shape[1] != 3 or tuple(image.shape[-2:]) != self.image_size:
            raise ValueError(f"{type(self).__name__} expects images (B, 3, {self.image_size[0]}, "
                             f"{self.image_size[1]}), got {tuple(image.shape)}")
        if start_pixel.shape != (image.shape[0], 2):
            raise ValueError(f"start_pixel must be (B, 2), got {tuple(start_pixel.shape)}")

    def apply_mode(self) -> None:
        """Frozen: no gradients. Subclasses call it last in __init__, once every parameter exists;
        train() below keeps a frozen backbone in eval mode."""
        if self.cfg.mode == "frozen":
            for p in self.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True):
        return super().train(mode and self.cfg.mode != "frozen")

    def added_parameters(self) -> list[nn.Parameter]:
        """What this codebase adds on top of a (possibly pretrained) network: randomly initialised, so
        it trains at the head's learning rate, not the backbone's (1e-6 would leave it at random)."""
        return [self.keypoint]

    def save_architecture(self, directory) -> None:
        """Write what rebuilds this backbone without its source weights (nothing when the config suffices)."""

    def prepare_stage(self, stage: str, uses_aux: bool) -> None:
        """Set what trains in `stage`: no gradients to parameters its loss never reaches (DDP requires
        every trained parameter to get one); `uses_aux`: the auxiliary loss is part of the objective."""

    def pretrain_loss(self, stage: str, batch: dict) -> torch.Tensor:
        """The backbone's own loss for a pretraining stage (e.g. SVD's 'diffusion')."""
        raise ValueError(f"backbone '{self.cfg.type}' has no '{stage}' stage (it needs backbone.type=svd)")


def keypoint_cells(start_pixel: torch.Tensor, image_size, grid_size) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, col) of the grid cell containing each start pixel; a pixel outside the image is an error."""
    return pixel_cells(start_pixel, image_size, grid_size, "start keypoint(s)",
                       "the end effector must be visible to condition on it")


def add_at_cells(grid: torch.Tensor, row: torch.Tensor, col: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
    """Add `embedding` (C,) to grid (B, C, h, w) at one cell per sample, out of place (every backbone
    adds its start-keypoint embedding through this; a token layout is viewed as a grid first)."""
    onehot = torch.zeros(grid.shape[0], 1, *grid.shape[-2:], dtype=grid.dtype, device=grid.device)
    onehot[torch.arange(grid.shape[0], device=grid.device), 0, row, col] = 1
    return grid + onehot * embedding.view(1, -1, 1, 1).to(grid.dtype)
