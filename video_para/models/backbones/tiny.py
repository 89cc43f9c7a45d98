"""Tiny fully-convolutional encoder for the CPU quickstart and fast tests.

A patchify stem (kernel = stride = 2**n_down) maps the image to the feature grid at once, the
start-keypoint embedding is added at its cell, then residual 3x3 blocks with doubling dilation give
a receptive field spanning the whole grid (the head must relate the gripper to the bowl and the
plate) while staying translation-equivariant, the property PARA's spatial generalisation rests on
(hence no coordinate channels).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import BACKBONES, Backbone, BackboneConfig, BackboneOutput, add_at_cells, keypoint_cells


@dataclass
class TinyBackboneConfig(BackboneConfig):
    type: str = "tiny"
    channels: int = 32
    n_down: int = 2            # feature grid = image / 2**n_down
    n_blocks: int = 4          # residual blocks, dilation 1, 2, 4, ... (capped at 8)


class _Block(nn.Module):
    def __init__(self, c: int, dilation: int):
        super().__init__()
        conv = lambda: nn.Conv2d(c, c, 3, padding=dilation, dilation=dilation)  # noqa: E731
        self.net = nn.Sequential(nn.GroupNorm(8, c), nn.GELU(), conv(), nn.GroupNorm(8, c), nn.GELU(), conv())

    def forward(self, x):
        return x + self.net(x)


class TinyBackbone(Backbone):
    def __init__(self, cfg: TinyBackboneConfig, image_size):
        super().__init__(cfg, image_size)
        f = 2 ** cfg.n_down
        if self.image_size[0] % f or self.image_size[1] % f:
            raise ValueError(f"tiny backbone: image size {self.image_size} must be divisible by {f}")
        c = cfg.channels
        self.stem = nn.Conv2d(3, c, f, stride=f)
        self.grid = (self.image_size[0] // f, self.image_size[1] // f)
        self.keypoint = nn.Parameter(torch.randn(c) * 0.5)
        self.blocks = nn.Sequential(*[_Block(c, min(2 ** i, 8)) for i in range(cfg.n_blocks)])
        self.out_channels = c
        self.apply_mode()

    def forward(self, image, start_pixel, clip=None) -> BackboneOutput:
        self.check_inputs(image, start_pixel)
        x = self.stem(image * 2 - 1)
        row, col = keypoint_cells(start_pixel, self.image_size, self.grid)
        return BackboneOutput(self.blocks(add_at_cells(x, row, col, self.keypoint)))


@BACKBONES.register("tiny", TinyBackboneConfig)
def build_tiny(cfg, image_size, architecture=None):   # fully described by its config
    return TinyBackbone(cfg, image_size)
