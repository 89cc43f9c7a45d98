"""Offline metrics: a policy's predictions against held-out expert windows, no rollout.

Rollout success is the paper's metric, but it mixes every error into one bit; these numbers say which
part of a prediction breaks out of distribution — where (pixel error of the predicted target), how
high (height error), and when to grasp (gripper agreement) — for any head, since every head decodes
to the same structure.
"""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from ..episodes import GRIPPER_CLOSED_AT
from ..geometry import Camera


@torch.no_grad()
def offline_metrics(policy, dataset, batch_size: int = 64) -> dict[str, float]:
    """Mean over windows and the N_W steps of: pixel error (px), 3D error (m), height error (m) and
    gripper agreement (fraction of steps where the predicted and expert gripper agree on open/closed)."""
    policy.eval()
    sums: dict[str, float] = {"pixel_error_px": 0.0, "xyz_error_m": 0.0, "height_error_m": 0.0, "gripper_agreement": 0.0}
    n = 0
    H, W = policy.config.image_size
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        cam = Camera(batch["K"], batch["world_from_cam"], W, H)
        dec = policy.predict_batch(batch["image"], batch["start_pixel"], cam, batch["support_z"])
        height = dec.heights if dec.heights is not None else dec.xyz[..., 2] - batch["support_z"][:, None]
        sums["pixel_error_px"] += (dec.pixels - batch["target_pixels"]).norm(dim=-1).mean(-1).sum().item()
        sums["xyz_error_m"] += (dec.xyz - batch["target_xyz"]).norm(dim=-1).mean(-1).sum().item()
        sums["height_error_m"] += (height - batch["target_height"]).abs().mean(-1).sum().item()
        agree = (dec.gripper >= GRIPPER_CLOSED_AT) == (batch["target_gripper"] >= GRIPPER_CLOSED_AT)
        sums["gripper_agreement"] += agree.float().mean(-1).sum().item()
        n += len(batch["image"])
    return {k: v / max(1, n) for k, v in sums.items()}


def format_metrics(rows: dict[str, dict[str, float]]) -> str:
    """Markdown table: one row per (method, split) name."""
    if not rows:
        return ""
    keys = list(next(iter(rows.values())))
    lines = ["| | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    lines += [f"| {name} | " + " | ".join(f"{m[k]:.3f}" for k in keys) + " |" for name, m in rows.items()]
    return "\n".join(lines)

