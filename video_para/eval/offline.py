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


def _predict(policy, batch, width: int, height: int):
    cam = Camera(batch["K"], batch["world_from_cam"], width, height)
    return policy.predict_batch(batch["image"], batch["start_pixel"], cam, batch["support_z"])


@torch.no_grad()
def offline_metrics(policy, dataset, batch_size: int = 64) -> dict[str, float]:
    """Mean over windows and the N_W steps of: pixel error (px), 3D error (m), height error (m) and
    gripper agreement (fraction of steps where the predicted and expert gripper agree on open/closed).
    A window whose prediction cannot be decoded (a PARA pixel above the horizon: no 3D point) fails as
    its rollout would: it counts in `failed_windows` (a fraction) and not in the means."""
    policy.eval()
    sums: dict[str, float] = {"pixel_error_px": 0.0, "xyz_error_m": 0.0, "height_error_m": 0.0, "gripper_agreement": 0.0}
    n = failed = 0
    H, W = policy.config.image_size
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        try:
            decoded = [(batch, _predict(policy, batch, W, H))]
        except ValueError:                       # find the windows that fail, keep the rest
            decoded = []
            for i in range(len(batch["image"])):
                item = {k: v[i:i + 1] for k, v in batch.items()}
                try:
                    decoded.append((item, _predict(policy, item, W, H)))
                except ValueError:
                    failed += 1
        for b, dec in decoded:
            height = dec.heights if dec.heights is not None else dec.xyz[..., 2] - b["support_z"][:, None]
            sums["pixel_error_px"] += (dec.pixels - b["target_pixels"]).norm(dim=-1).mean(-1).sum().item()
            sums["xyz_error_m"] += (dec.xyz - b["target_xyz"]).norm(dim=-1).mean(-1).sum().item()
            sums["height_error_m"] += (height - b["target_height"]).abs().mean(-1).sum().item()
            agree = (dec.gripper >= GRIPPER_CLOSED_AT) == (b["target_gripper"] >= GRIPPER_CLOSED_AT)
            sums["gripper_agreement"] += agree.float().mean(-1).sum().item()
            n += len(b["image"])
    return {**{k: v / max(1, n) for k, v in sums.items()}, "failed_windows": failed / max(1, n + failed)}


def format_metrics(rows: dict[str, dict[str, float]]) -> str:
    """Markdown table: one row per (method, split) name."""
    if not rows:
        return ""
    keys = list(next(iter(rows.values())))
    lines = ["| | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    lines += [f"| {name} | " + " | ".join(f"{m[k]:.3f}" for k in keys) + " |" for name, m in rows.items()]
    return "\n".join(lines)

