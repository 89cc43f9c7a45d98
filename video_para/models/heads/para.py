"""PARA head: per-pixel heatmaps, height bins and gripper bins for N_W future steps.

Only the N_W heatmap logits are computed over the grid and upsampled to the output size. Height and
gripper logits are needed at one pixel per step (the ground-truth pixel in training, the argmax at
inference): a 1x1 conv and bilinear upsampling are both linear (the latter with weights summing to
one), so they commute, and we bilinearly sample the *features* at that pixel and apply the 1x1
conv's weights there. This equals upsampling the full (N_W, N_H, H, W) logit volume and indexing it
(para_reference.py, the executable spec) without computing the volume even at feature resolution.

Precision note: a bilinear patch attains its maximum at a corner, so the argmax of an upsampled
heatmap always sits next to a feature-grid node; decoded pixels are quantised to about the feature
stride (image size / feature size), while the fine-grid cross-entropy still trains sub-stride.
`subpixel` refines the peak from the feature-grid logits (subpixel.py) and reads the bins there.

Where the bins are read (`height_at`, `gripper_at`): `target` is the paper's read-out (each step's bins
at that step's pixel). `current` reads every step's bins at the current end-effector pixel, the one
place in the image whose appearance (gripper open or holding the object) says what the gripper is
doing wherever in the image the arm is; a target pixel mid-carry shows bare table, which out of the
training region the features tie to the approach (gripper open).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...geometry import Bins, pixel_cells
from ..stats import Stats
from .base import HEADS, Decoded, Head, HeadConfig
from .subpixel import MODES, quadratic_peak, softargmax_peak
from .upsampled_argmax import upsampled_argmax

READOUTS = ("target", "current")


@dataclass
class ParaHeadConfig(HeadConfig):
    type: str = "para"
    hidden_channels: int = 128
    num_conv_layers: int = 1          # 3x3 conv + GELU layers before the 1x1 outputs (0 = none)
    n_height_bins: int = 32
    n_gripper_bins: int = 32
    output_height: int = 0            # heatmap grid; 0 = the input image size
    output_width: int = 0
    heatmap_weight: float = 1.0
    height_weight: float = 1.0
    gripper_weight: float = 1.0
    # decoding (subpixel.py): none (argmax cell) | quadratic | softargmax. softargmax measured best on
    # held-out demos of the training region (tiny_para: 1.78 px vs 1.89 quadratic, 2.21 none)
    subpixel: str = "softargmax"
    # where each step's bins are read (module docstring): target (the step's pixel) | current (EE pixel)
    height_at: str = "target"
    gripper_at: str = "target"
    # > 0: step k's peak is searched only within reach_margin x the farthest a step-k target lay from
    # the current EE pixel in training (stats.reach_px), plus one feature node; 0: the whole image
    reach_margin: float = 0.0
    TRAINING_ONLY = ("heatmap_weight", "height_weight", "gripper_weight")
    # the trunk and heatmap conv; the height/gripper bin layers depend on data statistics (their ranges)
    HEATMAP = ("trunk.", "heatmap.")


def cell_centres(pixels: torch.Tensor, image_size, out_size) -> tuple[torch.Tensor, torch.Tensor]:
    """Image pixels (..., 2) -> (flat index into the out grid, normalised grid_sample coords of that cell's centre)."""
    row, col = pixel_cells(pixels, image_size, out_size, "target pixel(s)",
                           "windows must drop or clip them (data.out_of_image)")
    Ho, Wo = out_size
    return row * Wo + col, _centre_grid(row, col, Ho, Wo)


def _centre_grid(row, col, Ho, Wo) -> torch.Tensor:
    # float64 so the sample point is exactly the cell centre whatever the logits' dtype
    return torch.stack([(2 * col + 1) / Wo - 1, (2 * row + 1) / Ho - 1], -1).double()


def sample_at(features: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample features (B, C, h, w) at points grid (B, N, 2) -> (B, N, C)."""
    # align_corners=False + border padding is exactly what F.interpolate(bilinear) evaluates at a cell centre
    out = F.grid_sample(features, grid[:, :, None, :].to(features.dtype), mode="bilinear",
                        padding_mode="border", align_corners=False)          # (B, C, N, 1)
    return out[..., 0].transpose(1, 2)


def conv1x1_per_step(conv: nn.Conv2d, feats: torch.Tensor) -> torch.Tensor:
    """Apply step n's slice of a (N*K, C) 1x1 conv to features sampled for step n: (B,N,C) -> (B,N,K)."""
    N = feats.shape[1]
    weight = conv.weight.view(N, -1, conv.in_channels)
    # one batched matmul over steps on a strided view of the (N*K, C) weight, which einsum would copy
    return torch.baddbmm(conv.bias.view(N, 1, -1), feats.transpose(0, 1).contiguous(), weight.transpose(1, 2)).transpose(0, 1)


def conv_trunk(in_channels: int, hidden: int, n_layers: int) -> tuple[nn.Sequential, int]:
    """n_layers of 3x3 conv + GELU (resolution kept) and the channels they output."""
    layers, c = [], in_channels
    for _ in range(n_layers):
        layers += [nn.Conv2d(c, hidden, 3, padding=1), nn.GELU()]
        c = hidden
    return nn.Sequential(*layers), c


class ParaHead(Head):
    def __init__(self, cfg: ParaHeadConfig, in_channels: int, n_window: int, image_size, stats: Stats):
        super().__init__()
        if cfg.subpixel not in MODES:
            raise ValueError(f"head.subpixel must be one of {MODES}, got '{cfg.subpixel}'")
        for name in ("height_at", "gripper_at"):
            if getattr(cfg, name) not in READOUTS:
                raise ValueError(f"head.{name} must be one of {READOUTS}, got '{getattr(cfg, name)}'")
        self.cfg, self.n_window, self.image_size = cfg, n_window, tuple(image_size)
        self.reach_px = tuple(stats.reach_px or ())
        self.set_reach_margin(cfg.reach_margin)
        self.out_size = (cfg.output_height or image_size[0], cfg.output_width or image_size[1])
        self.height_bins = Bins(stats.height_low, stats.height_high, cfg.n_height_bins)
        self.gripper_bins = Bins(stats.gripper_low, stats.gripper_high, cfg.n_gripper_bins)
        self.trunk, c = conv_trunk(in_channels, cfg.hidden_channels, cfg.num_conv_layers)
        self.heatmap = nn.Conv2d(c, n_window, 1)
        self.height = nn.Conv2d(c, n_window * cfg.n_height_bins, 1)
        self.gripper = nn.Conv2d(c, n_window * cfg.n_gripper_bins, 1)

    def forward(self, features: torch.Tensor) -> dict:
        x = self.trunk(features)
        return {"features": x, "heatmap": self.heatmap(x)}

    def bin_logits(self, out: dict, grid: torch.Tensor, start_pixel: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Height and gripper logits (B, N_W, N_H / N_G), each read at one grid point per step: the
        step's target `grid` (B, N_W, 2) or the cell of the current EE pixel `start_pixel` (B, 2)."""
        feats = {"target": sample_at(out["features"], grid)}
        if "current" in (self.cfg.height_at, self.cfg.gripper_at):
            if start_pixel is None:
                raise ValueError("head.height_at/gripper_at 'current' reads the bins at the current EE pixel: "
                                 "pass start_pixel")
            _, here = cell_centres(start_pixel[:, None].expand(-1, self.n_window, -1), self.image_size, self.out_size)
            feats["current"] = sample_at(out["features"], here)
        return (conv1x1_per_step(self.height, feats[self.cfg.height_at]),
                conv1x1_per_step(self.gripper, feats[self.cfg.gripper_at]))

    def heatmap_logits(self, out: dict) -> torch.Tensor:
        """(B, N_W, H_out, W_out) heatmap logits on the output grid."""
        return F.interpolate(out["heatmap"], size=self.out_size, mode="bilinear", align_corners=False)

    def loss(self, out: dict, batch: dict) -> dict:
        target_idx, grid = cell_centres(batch["target_pixels"], self.image_size, self.out_size)
        heat = self.heatmap_logits(out).flatten(2)                       # (B, N_W, H*W)
        height, gripper = self.bin_logits(out, grid, batch.get("start_pixel"))
        terms = {
            "heatmap": F.cross_entropy(heat.flatten(0, 1), target_idx.flatten()),
            "height": F.cross_entropy(height.flatten(0, 1), self.height_bins.encode(batch["target_height"]).flatten()),
            "gripper": F.cross_entropy(gripper.flatten(0, 1), self.gripper_bins.encode(batch["target_gripper"]).flatten()),
        }
        c = self.cfg
        terms["loss"] = (c.heatmap_weight * terms["heatmap"] + c.height_weight * terms["height"]
                         + c.gripper_weight * terms["gripper"])
        return terms

    def set_reach_margin(self, margin: float) -> None:
        """A decode-time choice (eval.py --reach-margin), checked against the statistics it needs."""
        if margin < 0:
            raise ValueError(f"head.reach_margin must be >= 0, got {margin}")
        if margin and len(self.reach_px) != self.n_window:
            raise ValueError(f"head.reach_margin needs the training windows' reach for each of the {self.n_window} "
                             f"steps (stats.json 'reach_px', saved by policies trained since it exists), got "
                             f"{list(self.reach_px) or None}: retrain the policy")
        self.cfg.reach_margin = float(margin)

    def within_reach(self, logits: torch.Tensor, start_pixel: torch.Tensor | None) -> torch.Tensor:
        """Feature-grid logits (B, N_W, h, w) with the nodes beyond step k's reach of the current EE
        pixel pushed below every other node. Out of distribution (clutter, another look) a heatmap can
        peak on something across the image while the arm can only have moved so far in k steps."""
        if start_pixel is None:
            raise ValueError("head.reach_margin limits each peak to a reach of the current EE pixel: pass start_pixel")
        (H, W), (h, w) = self.image_size, logits.shape[-2:]
        ys = (torch.arange(h, device=logits.device, dtype=logits.dtype) + 0.5) * (H / h)
        xs = (torch.arange(w, device=logits.device, dtype=logits.dtype) + 0.5) * (W / w)
        d = torch.hypot(xs[None, None, :] - start_pixel[:, 0, None, None].to(logits.dtype),
                        ys[None, :, None] - start_pixel[:, 1, None, None].to(logits.dtype))   # (B, h, w)
        radius = self.cfg.reach_margin * logits.new_tensor(self.reach_px) + max(H / h, W / w)   # + a node: never empty
        far = d[:, None] > radius[None, :, None, None]                                     # (B, N_W, h, w)
        floor = logits.flatten(2).amin(-1)[..., None, None] - 1e4
        return torch.where(far, floor, logits)

    @torch.no_grad()
    def decode(self, out: dict, start_pixel: torch.Tensor | None = None, heatmaps: bool = True) -> Decoded:
        """Peak pixel per step (argmax cell, or refined: cfg.subpixel), then height/gripper bins read
        there (or at the current EE pixel `start_pixel`, per height_at/gripper_at). `heatmaps=False` skips the full-resolution probabilities (only overlays need them),
        which makes decoding ~10x cheaper."""
        logits, (H, W) = out["heatmap"], self.image_size
        if self.cfg.reach_margin:
            logits = self.within_reach(logits, start_pixel)
        if self.cfg.subpixel == "none":
            (Ho, Wo), (row, col) = self.out_size, upsampled_argmax(logits, self.out_size)
            grid = _centre_grid(row, col, Ho, Wo)
            pixels = torch.stack([(col + 0.5) * (W / Wo), (row + 0.5) * (H / Ho)], -1).to(logits.dtype)
        else:
            h, w = logits.shape[-2:]
            row, col = quadratic_peak(logits) if self.cfg.subpixel == "quadratic" else softargmax_peak(logits, self.out_size)
            pixels = torch.stack([(col + 0.5) * (W / w), (row + 0.5) * (H / h)], -1)
            grid = pixels * pixels.new_tensor([2 / W, 2 / H]) - 1
        height, grip = self.bin_logits(out, grid, start_pixel)
        heights = self.height_bins.decode(height.argmax(-1).to(logits.dtype))
        gripper = self.gripper_bins.decode(grip.argmax(-1).to(logits.dtype))
        probs = self.heatmap_logits(out).flatten(2).softmax(-1).view(logits.shape[:2] + self.out_size) if heatmaps else None
        return Decoded(gripper=gripper, pixels=pixels, heights=heights, heatmaps=probs)


@HEADS.register("para", ParaHeadConfig)
def build_para(cfg, in_channels, n_window, image_size, stats):
    return ParaHead(cfg, in_channels, n_window, image_size, stats)
