"""Stable Video Diffusion components: loading from a hub id / local directory, and the tiny preset.

A weights directory has the diffusers pipeline layout: unet/, vae/, image_encoder/, feature_extractor/.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from torch import nn

SUBFOLDERS = ("unet", "vae", "image_encoder", "feature_extractor")


@dataclass
class SvdComponents:
    unet: nn.Module           # UNetSpatioTemporalConditionModel
    vae: nn.Module            # AutoencoderKLTemporalDecoder (only its encoder is used)
    image_encoder: nn.Module  # CLIPVisionModelWithProjection
    processor: object         # CLIPImageProcessor (its size / mean / std; preprocessing is done in torch)

    def save_pretrained(self, path) -> None:
        for name, part in zip(SUBFOLDERS, (self.unet, self.vae, self.image_encoder, self.processor)):
            part.save_pretrained(os.path.join(path, name))


def load_components(pretrained: str) -> SvdComponents:
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection
    if os.path.isdir(pretrained):
        missing = [s for s in SUBFOLDERS if not any(
            os.path.isfile(os.path.join(pretrained, s, f)) for f in ("config.json", "preprocessor_config.json"))]
        if missing:
            lacking = ", ".join(s + "/" for s in missing)
            raise FileNotFoundError(f"svd backbone: weights directory '{pretrained}' lacks {lacking} "
                                    f"(expected the diffusers layout {', '.join(s + '/' for s in SUBFOLDERS)})")
    loaders = (("unet", UNetSpatioTemporalConditionModel), ("vae", AutoencoderKLTemporalDecoder),
               ("image_encoder", CLIPVisionModelWithProjection), ("feature_extractor", CLIPImageProcessor))
    parts = []
    for sub, cls in loaders:
        try:
            parts.append(cls.from_pretrained(pretrained, subfolder=sub))
        except (OSError, ValueError) as e:
            raise OSError(f"svd backbone: cannot load {sub} ({cls.__name__}) from '{pretrained}': {e}") from e
    return SvdComponents(*parts)


def tiny_components() -> SvdComponents:
    """Small random-init components with the SVD wiring (8 input channels, 3 added time ids)."""
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection
    clip_dim, time_dim = 32, 8
    unet = UNetSpatioTemporalConditionModel(
        in_channels=8, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        addition_time_embed_dim=time_dim, projection_class_embeddings_input_dim=3 * time_dim,
        cross_attention_dim=clip_dim, num_attention_heads=(2, 4), num_frames=8)
    # GroupNorm(32) inside the VAE needs multiples of 32 channels; 3 blocks = latents at 1/4 resolution
    vae = AutoencoderKLTemporalDecoder(down_block_types=("DownEncoderBlock2D",) * 3,
                                       block_out_channels=(32, 32, 32), latent_channels=4)
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        image_size=32, patch_size=8, projection_dim=clip_dim))
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return SvdComponents(unet, vae, clip, processor)
