"""Stable Video Diffusion components: loading from a hub id / local directory, rebuilding from saved
configs alone (a saved policy's architecture), the tiny preset, and the full img2vid architecture.

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
    vae: nn.Module            # AutoencoderKLTemporalDecoder (encoder for features, decoder for stage 0)
    image_encoder: nn.Module  # CLIPVisionModelWithProjection
    processor: object         # CLIPImageProcessorPil: only its size / mean / std (preprocessing is in torch),
                              # so the PIL class, not the torchvision-backed default (no torchvision here)

    def save_pretrained(self, path) -> None:
        for name, part in zip(SUBFOLDERS, (self.unet, self.vae, self.image_encoder, self.processor)):
            part.save_pretrained(os.path.join(path, name))

    def save_configs(self, path) -> None:
        """The architecture only (no weights): what `components_from_configs` rebuilds."""
        self.unet.save_config(os.path.join(path, "unet"))
        self.vae.save_config(os.path.join(path, "vae"))
        self.image_encoder.config.save_pretrained(os.path.join(path, "image_encoder"))
        self.processor.save_pretrained(os.path.join(path, "feature_extractor"))


def _check_layout(pretrained: str) -> None:
    missing = [s for s in SUBFOLDERS if not any(
        os.path.isfile(os.path.join(pretrained, s, f)) for f in ("config.json", "preprocessor_config.json"))]
    if missing:
        lacking = ", ".join(s + "/" for s in missing)
        raise FileNotFoundError(f"svd backbone: directory '{pretrained}' lacks {lacking} "
                                f"(expected the diffusers layout {', '.join(s + '/' for s in SUBFOLDERS)})")


def load_components(pretrained: str) -> SvdComponents:
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    from transformers import CLIPImageProcessorPil, CLIPVisionModelWithProjection
    if os.path.isdir(pretrained):
        _check_layout(pretrained)
    loaders = (("unet", UNetSpatioTemporalConditionModel), ("vae", AutoencoderKLTemporalDecoder),
               ("image_encoder", CLIPVisionModelWithProjection), ("feature_extractor", CLIPImageProcessorPil))
    parts = []
    for sub, cls in loaders:
        try:
            parts.append(cls.from_pretrained(pretrained, subfolder=sub))
        except (OSError, ValueError) as e:
            raise OSError(f"svd backbone: cannot load {sub} ({cls.__name__}) from '{pretrained}': {e}") from e
    return SvdComponents(*parts)


def components_from_configs(directory) -> SvdComponents:
    """Random-init (or, under `init_empty_weights`, empty) components from `save_configs` output."""
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModelWithProjection
    directory = str(directory)
    _check_layout(directory)
    sub = lambda name: os.path.join(directory, name)  # noqa: E731
    return SvdComponents(
        UNetSpatioTemporalConditionModel.from_config(UNetSpatioTemporalConditionModel.load_config(sub("unet"))),
        AutoencoderKLTemporalDecoder.from_config(AutoencoderKLTemporalDecoder.load_config(sub("vae"))),
        CLIPVisionModelWithProjection(CLIPVisionConfig.from_pretrained(sub("image_encoder"))),
        CLIPImageProcessorPil.from_pretrained(sub("feature_extractor")))


def tiny_components() -> SvdComponents:
    """Small random-init components with the SVD wiring (8 input channels, 3 added time ids)."""
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModelWithProjection
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
    processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return SvdComponents(unet, vae, clip, processor)


def img2vid_components(width: float = 1.0) -> SvdComponents:
    """The stable-video-diffusion-img2vid architecture with random weights (`width` < 1 narrows every
    layer for CPU checks; depth and wiring stay). Build under `init_empty_weights` to allocate nothing."""
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModelWithProjection
    ch = lambda c: max(32, int(c * width) // 32 * 32)  # noqa: E731  (GroupNorm(32) needs multiples of 32)
    clip_dim, clip_hidden = ch(1024), ch(1280)
    unet_channels = tuple(ch(c) for c in (320, 640, 1280, 1280))
    unet = UNetSpatioTemporalConditionModel(    # diffusers' defaults are the img2vid UNet ...
        block_out_channels=unet_channels, cross_attention_dim=clip_dim,   # ... at width 1
        num_attention_heads=tuple(max(1, c // 64) for c in unet_channels))
    vae = AutoencoderKLTemporalDecoder(down_block_types=("DownEncoderBlock2D",) * 4, layers_per_block=2,
                                       block_out_channels=tuple(ch(c) for c in (128, 256, 512, 512)),
                                       latent_channels=4, sample_size=768)
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(   # OpenCLIP ViT-H/14
        hidden_size=clip_hidden, intermediate_size=4 * clip_hidden, num_hidden_layers=32,
        num_attention_heads=max(1, clip_hidden // 80), image_size=224, patch_size=14, projection_dim=clip_dim))
    processor = CLIPImageProcessorPil(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    return SvdComponents(unet, vae, clip, processor)
