"""Tiny fully-convolutional encoder for the CPU quickstart and fast tests.

Stride-`2**n_down` conv stack; the start keypoint embedding is added after the stem, where the grid
still resolves the end effector finely. Features keep the spatial layout the PARA head needs.
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
    n_blocks: int = 2          # residual 3x3 blocks at feature resolution


class _Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.net = nn.Sequential(nn.GroupNorm(8, c), nn.GELU(), nn.Conv2d(c, c, 3, padding=1),
                                 nn.GroupNorm(8, c), nn.GELU(), nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x):
        return x + self.net(x)


class TinyBackbone(Backbone):
    def __init__(self, cfg: TinyBackboneConfig, image_size):
        super().__init__(cfg, image_size)
        f = 2 ** cfg.n_down
        if self.image_size[0] % f or self.image_size[1] % f:
            raise ValueError(f"tiny backbone: image size {self.image_size} must be divisible by {f}")
        c = cfg.channels
        # no coordinate channels: a convolutional stack stays translation-equivariant, which is the
        # property PARA's spatial generalisation rests on
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.keypoint = nn.Parameter(torch.randn(c) * 0.5)
        down = []
        for _ in range(cfg.n_down):
            down += [nn.GELU(), nn.Conv2d(c, c, 4, stride=2, padding=1)]
        self.down = nn.Sequential(*down)
        self.blocks = nn.Sequential(*[_Block(c) for _ in range(cfg.n_blocks)])
        self.out_channels = c
        self.apply_mode()

    def forward(self, image, start_pixel, clip=None) -> BackboneOutput:
        self.check_inputs(image, start_pixel)
        x = self.stem(image * 2 - 1)
        row, col = keypoint_cells(start_pixel, self.image_size, self.image_size)
        x = add_at_cells(x, row, col, self.keypoint)
        return BackboneOutput(self.blocks(self.down(x)))


@BACKBONES.register("tiny", TinyBackboneConfig)
def build_tiny(cfg, image_size):
    return TinyBackbone(cfg, image_size)
