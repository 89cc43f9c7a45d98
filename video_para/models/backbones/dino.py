"""DINOv2 / DINOv3 ViT backbone: patch tokens reshaped to the (H/p, W/p) grid.

The start-keypoint embedding is added to the patch token at the end-effector cell right after the
patch embedding (a forward hook on the embeddings module), so every transformer block can attend
to it. The CLS and register tokens that precede the patch tokens are skipped when reading features.
`pretrained` is a hub id or a local directory; `preset: tiny` builds a small random-init model.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .base import BACKBONES, Backbone, BackboneConfig, BackboneOutput, add_at_cells, keypoint_cells

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class DinoBackboneConfig(BackboneConfig):
    type: str = "dino"
    pretrained: str = "facebook/dinov2-small"   # hub id or local directory (AutoModel)
    version: str = "v2"   # tiny preset only (AutoModel reads the class from `pretrained`): v2 patch 14 | v3 patch 16
    preset: str = ""                            # "" = load `pretrained` | tiny = random-init small ViT
    tiny_dim: int = 32


def tiny_model(version: str, dim: int = 32, image_size: int = 64) -> nn.Module:
    import transformers as tf
    common = dict(hidden_size=dim, num_hidden_layers=2, num_attention_heads=2, intermediate_size=2 * dim,
                  image_size=image_size)
    if version == "v2":
        return tf.Dinov2Model(tf.Dinov2Config(patch_size=14, **common))
    if version == "v3":
        return tf.DINOv3ViTModel(tf.DINOv3ViTConfig(patch_size=16, num_register_tokens=4, **common))
    raise ValueError(f"dino backbone: version must be 'v2' or 'v3', got '{version}'")


def load_model(cfg: DinoBackboneConfig) -> nn.Module:
    if cfg.preset == "tiny":
        return tiny_model(cfg.version, cfg.tiny_dim)
    if cfg.preset:
        raise ValueError(f"dino backbone: preset must be '' or 'tiny', got '{cfg.preset}'")
    from transformers import AutoModel
    try:
        return AutoModel.from_pretrained(cfg.pretrained)
    except OSError as e:
        raise OSError(f"dino backbone: cannot load '{cfg.pretrained}' (hub id or local directory with "
                      f"config.json + weights): {e}") from e


class DinoBackbone(Backbone):
    def __init__(self, cfg: DinoBackboneConfig, image_size, model: nn.Module | None = None):
        super().__init__(cfg, image_size)
        self.vit = model if model is not None else load_model(cfg)
        c = self.vit.config
        self.patch = int(c.patch_size)
        H, W = self.image_size
        if H % self.patch or W % self.patch:
            raise ValueError(f"dino backbone: image size {W}x{H} (WxH) must be a multiple of the patch size "
                             f"{self.patch} (e.g. {W - W % self.patch}x{H - H % self.patch})")
        self.grid = (H // self.patch, W // self.patch)
        self.n_prefix = 1 + int(getattr(c, "num_register_tokens", 0) or 0)   # CLS + registers
        self.out_channels = int(c.hidden_size)
        self.keypoint = nn.Parameter(torch.randn(self.out_channels) * 0.02)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self._cells: tuple[torch.Tensor, torch.Tensor] | None = None
        self.vit.embeddings.register_forward_hook(self._add_keypoint)
        self.apply_mode()
        if getattr(self.vit.embeddings, "mask_token", None) is not None:   # masked-image pretraining only:
            self.vit.embeddings.mask_token.requires_grad_(False)          # unused, so DDP must not wait for it

    def save_architecture(self, directory) -> None:
        self.vit.config.save_pretrained(Path(directory) / "vit")

    def _add_keypoint(self, module, args, tokens):
        """Add the keypoint embedding to the EE patch token, before any transformer block."""
        if self._cells is None:
            raise RuntimeError("dino backbone: the ViT must be called through DinoBackbone.forward")
        grid = add_at_cells(self._patch_grid(tokens), *self._cells, self.keypoint)
        return torch.cat([tokens[:, :self.n_prefix], grid.flatten(2).transpose(1, 2)], 1)

    def _patch_grid(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens (B, n_prefix + h*w, C) -> the patch tokens as a grid (B, C, h, w)."""
        patches = tokens[:, self.n_prefix:]
        if patches.shape[1] != self.grid[0] * self.grid[1]:
            raise RuntimeError(f"dino backbone: {patches.shape[1]} patch tokens for a {self.grid} grid; "
                               f"wrong number of register tokens ({self.n_prefix - 1})?")
        return patches.transpose(1, 2).unflatten(2, self.grid)

    def forward(self, image, start_pixel, clip=None) -> BackboneOutput:
        self.check_inputs(image, start_pixel)
        self._cells = keypoint_cells(start_pixel, self.image_size, self.grid)
        try:
            tokens = self.vit(pixel_values=(image - self.mean) / self.std).last_hidden_state
        finally:
            self._cells = None
        return BackboneOutput(self._patch_grid(tokens))


@BACKBONES.register("dino", DinoBackboneConfig)
def build_dino(cfg, image_size, architecture=None):
    if architecture is None:
        return DinoBackbone(cfg, image_size)
    from transformers import AutoConfig, AutoModel
    return DinoBackbone(cfg, image_size, AutoModel.from_config(AutoConfig.from_pretrained(Path(architecture) / "vit")))
