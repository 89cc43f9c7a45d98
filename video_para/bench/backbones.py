"""Backbones: forward + backward time per sample and peak memory of a policy training step on each
tiny preset (CPU), the PARA head's share of a training step at the DINOv2-S / 448 shape
(random-init full-size dinov2-small, no download). The full-size GPU steps: `bench gpu` (make gpu-check)."""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ..models import Policy, PolicyConfig, Stats
from ..models.backbones.dino import DinoBackbone, DinoBackboneConfig
from ..models.backbones.svd import SvdBackboneConfig
from ..models.backbones.tiny import TinyBackboneConfig
from ..models.heads import HEADS
from ..models.heads.para import ParaHeadConfig
from .heads import _peak_bytes

STATS = Stats(0.0, 0.3, 0.0, 1.0, [0.0, 0.0, 0.1], [0.2, 0.2, 0.1], 0.5, 0.5)


def batch(B, H, W, T=0, N=12, device="cpu"):
    """A random training batch at image size HxW; with T > 1 a T-frame clip whose frame 0 is the image."""
    g = torch.Generator().manual_seed(0)
    image = torch.rand(B, 3, H, W, generator=g)
    b = {"image": image, "start_pixel": torch.rand(B, 2, generator=g) * torch.tensor([W, H]),
         "target_pixels": torch.rand(B, N, 2, generator=g) * torch.tensor([W, H]),
         "target_height": torch.rand(B, N, generator=g) * 0.3, "target_gripper": torch.rand(B, N, generator=g).round(),
         "target_xyz": torch.zeros(B, N, 3)}
    if T:
        b["clip"] = torch.cat([image[:, None], torch.rand(B, T - 1, 3, H, W, generator=g)], 1)
    return {k: v.to(device) for k, v in b.items()}


def _median_time(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _step(model, batch):
    def fn():
        model.zero_grad(set_to_none=True)
        model.compute_loss(batch)["loss"].backward()
    return fn


def tiny_presets(B, repeats):
    print(f"tiny presets, PARA head, batch {B}, {torch.get_num_threads()} threads (CPU)")
    presets = (("tiny", TinyBackboneConfig(), 64, 0), ("svd tiny", SvdBackboneConfig(preset="tiny", n_frames=3,
               tap_blocks=[0, 1], feature_size=16), 64, 3), ("dino tiny", DinoBackboneConfig(preset="tiny"), 56, 0))
    for name, cfg, size, T in presets:
        policy = Policy(PolicyConfig(backbone=cfg, image_height=size, image_width=size), STATS).train()
        fn = _step(policy, batch(B, size, size, T))
        peak = _peak_bytes(fn)   # cold step: includes the activations and gradient buffers allocated once
        t = _median_time(fn, repeats)
        extra = f", {T}-frame clip (aux loss)" if T else ""
        print(f"  {name:9s} {size}x{size}{extra}: fwd+bwd {t / B * 1e3:8.1f} ms/sample   "
              f"peak RSS +{peak / 2**20:7.1f} MiB")


def dino_head_share(B, repeats):
    from transformers import Dinov2Config, Dinov2Model
    vit = Dinov2Model(Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                                   intermediate_size=1536, patch_size=14, image_size=518))
    backbone = DinoBackbone(DinoBackboneConfig(), (448, 448), vit).train()
    head = HEADS.build(ParaHeadConfig(), backbone.out_channels, 12, (448, 448), STATS).train()
    b = batch(B, 448, 448)

    def full():
        backbone.zero_grad(set_to_none=True)
        head.zero_grad(set_to_none=True)
        head.loss(head(backbone(b["image"], b["start_pixel"]).features), b)["loss"].backward()

    feats = torch.randn(B, 384, 32, 32, requires_grad=True)

    def head_only():
        head.zero_grad(set_to_none=True)
        head.loss(head(feats), b)["loss"].backward()

    peak = _peak_bytes(full)
    t_full, t_head = _median_time(full, repeats), _median_time(head_only, repeats)
    print(f"DINOv2-S (random init, 22 M params) 448x448 -> 32x32x384 + PARA head, batch {B} (CPU):")
    print(f"  training step {t_full * 1e3:8.1f} ms   head alone {t_head * 1e3:8.1f} ms   "
          f"head share {100 * t_head / t_full:5.1f} %   peak RSS +{peak / 2**20:7.1f} MiB")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m video_para.bench backbones")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-dino", action="store_true", help="skip the DINOv2-S head-share measurement")
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    tiny_presets(a.batch, a.repeats)
    if not a.skip_dino:
        dino_head_share(1, a.repeats)

