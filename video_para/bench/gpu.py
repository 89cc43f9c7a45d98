"""`make gpu-check` (= `python -m video_para.bench gpu`): the full-size training steps, measured.

No hub access: the stable-video-diffusion-img2vid UNet + VAE + CLIP image encoder and DINOv2-S/14 are
built from their configs with random weights (timing and memory do not depend on the values). Checks,
each printed as one JSON line (peak memory, seconds per step, the attention kernel that ran):
  svd_stage1   diffusion-only step (EDM loss on a 7-frame clip), UNet trained
  svd_joint    stage-2 step: tapped UNet features + PARA head + lambda * diffusion loss, split LRs
  dino_para    DINOv2-S/14 + PARA head at 448x448, batch 8
bf16 autocast over fp32 master weights and AdamW (what `accelerate launch --mixed_precision bf16` runs),
gradient checkpointing in the UNet. `--width 0.1 --device cpu ...` is the reduced CPU variant the tests run.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from contextlib import nullcontext

import numpy as np
import torch

from ..models import Policy, PolicyConfig, Stats
from ..models.backbones.dino import DinoBackboneConfig
from ..models.backbones.svd import SvdBackboneConfig
from ..models.backbones.svd_components import img2vid_components
from ..models.heads.para import ParaHeadConfig
from .backbones import batch
from .heads import _peak_bytes

STATS = Stats(0.0, 0.3, 0.0, 1.0, [0.0, 0.0, 0.1], [0.2, 0.2, 0.1], 0.5, 0.5)


def attention_kernel(policy: Policy) -> str:
    backbone = policy.backbone
    if hasattr(backbone, "unet"):
        names = sorted({type(p).__name__ for p in backbone.unet.attn_processors.values()})
        return ", ".join(names)   # XFormersAttnProcessor | AttnProcessor2_0 (torch SDPA)
    return f"transformers {backbone.vit.config._attn_implementation}"


def measure(name: str, policy: Policy, stage: str, b: dict, steps: int, device: torch.device) -> dict:
    """Median seconds of full optimizer steps (forward, backward, AdamW) after one warm-up step; peak memory."""
    policy.to(device).train()
    policy.freeze_unused(stage)
    opt = torch.optim.AdamW(policy.param_groups(1e-6, 1e-4))
    cuda = device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def step():
        with autocast:
            loss = policy(b, stage)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        return loss

    if cuda:
        torch.cuda.reset_peak_memory_stats()
        step()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = _peak_bytes(step)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t)
    trained = sum(p.numel() for g in opt.param_groups for p in g["params"])
    return {"check": name, "device": torch.cuda.get_device_name() if cuda else "cpu",
            "peak_memory_gib": round(peak / 2**30, 2), "peak_memory_kind": "cuda max allocated" if cuda else "RSS increase",
            "seconds_per_step": round(float(np.median(times)), 3), "attention": attention_kernel(policy),
            "trained_params_m": round(trained / 1e6, 1), "loss": round(loss.item(), 4),
            "batch": b["image"].shape[0], "image": list(b["image"].shape[-2:]),
            "frames": b["clip"].shape[1] if "clip" in b else 1}


def from_architecture(backbone_cfg, save_architecture, H: int, W: int, device) -> Policy:
    """A PARA policy whose backbone is built from configs alone (random weights, allocated on `device`)."""
    cfg = PolicyConfig(backbone=backbone_cfg, head=ParaHeadConfig(), image_height=H, image_width=W)
    with tempfile.TemporaryDirectory() as arch, torch.device(device):
        save_architecture(arch)
        return Policy(cfg, STATS, architecture=arch)


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(prog="python -m video_para.bench gpu", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--width", type=float, default=1.0, help="channel width of the SVD parts (1 = img2vid)")
    ap.add_argument("--size", default="320x576", help="SVD image HxW")
    ap.add_argument("--frames", type=int, default=7)
    ap.add_argument("--dino-size", type=int, default=448)
    ap.add_argument("--dino-batch", type=int, default=8)
    ap.add_argument("--dino-dim", type=int, default=384, help="hidden size (384 = DINOv2-S: 12 layers, 6 heads)")
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args(argv)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench gpu: no CUDA device here (the reduced CPU variant: --device cpu --width 0.1 "
                         "--size 64x64 --frames 3 --dino-size 56 --dino-batch 2 --dino-dim 32)")
    from accelerate import init_empty_weights
    from transformers import Dinov2Config
    H, W = (int(s) for s in a.size.split("x"))
    svd_cfg = SvdBackboneConfig(n_frames=a.frames, gradient_checkpointing=True)

    def svd_arch(directory):
        with init_empty_weights():
            img2vid_components(a.width).save_configs(directory)

    def dino_arch(directory):
        heads = max(1, a.dino_dim // 64)
        Dinov2Config(hidden_size=a.dino_dim, num_hidden_layers=12, num_attention_heads=heads,
                     intermediate_size=4 * a.dino_dim, patch_size=14, image_size=518).save_pretrained(f"{directory}/vit")

    checks = (("svd_stage1", "diffusion", svd_cfg, svd_arch, H, W, 1, a.frames),
              ("svd_joint", "finetune", svd_cfg, svd_arch, H, W, 1, a.frames),
              ("dino_para", "finetune", DinoBackboneConfig(), dino_arch, a.dino_size, a.dino_size, a.dino_batch, 0))
    results = []
    for name, stage, cfg, arch, h, w, B, T in checks:
        torch.manual_seed(0)
        policy = from_architecture(cfg, arch, h, w, device)
        results.append(measure(name, policy, stage, batch(B, h, w, T, 12, device), a.steps, device))
        print(json.dumps(results[-1]), flush=True)
        del policy
    return results
