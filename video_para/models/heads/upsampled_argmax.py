"""Exact argmax of a bilinearly upsampled heatmap without upsampling it.

F.interpolate(bilinear, align_corners=False) makes every output cell a convex combination of the
(up to) four feature-grid nodes of its stencil, so no cell exceeds its largest stencil node.
Evaluating only the cells whose stencil contains one of the k largest nodes therefore finds the
global argmax whenever the best value found is strictly above the (k+1)-th largest node: every
other cell is bounded by that node. Maps without that certificate (near-flat maps) fall back to
full upsampling. Ties resolve to the lowest flat
index, like torch.argmax on the upsampled map.
"""
from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F


@lru_cache(maxsize=32)
def _tables(n_out: int, n_in: int, device: torch.device):
    """(i0, i1, w1, members) for one axis: fixed per shape, so built once, not on every decode."""
    i0, i1, w1 = _axis(n_out, n_in, device)
    return i0, i1, w1, _members(i0, i1, n_in)


def _axis(n_out: int, n_in: int, device):
    """Per output index: source cells (i0, i1) and weight of i1, as PyTorch's upsample computes them."""
    src = ((torch.arange(n_out, device=device, dtype=torch.float32) + 0.5) * (n_in / n_out) - 0.5).clamp(min=0)
    i0 = src.floor().long().clamp(max=n_in - 1)
    return i0, (i0 + 1).clamp(max=n_in - 1), src - i0


def _members(i0: torch.Tensor, i1: torch.Tensor, n_in: int) -> torch.Tensor:
    """(n_in, m): the output indices whose stencil contains source node i, padded with -1."""
    node = torch.cat([i0, i1[i1 != i0]])
    outp = torch.cat([torch.arange(len(i0), device=i0.device), torch.nonzero(i1 != i0)[:, 0]])
    counts = torch.bincount(node, minlength=n_in)
    out = torch.full((n_in, int(counts.max())), -1, dtype=torch.long, device=i0.device)
    order = torch.argsort(node, stable=True)
    pos = torch.arange(len(node), device=i0.device) - (torch.cumsum(counts, 0) - counts)[node[order]]
    out[node[order], pos] = outp[order]
    return out


def upsampled_argmax(logits: torch.Tensor, out_size, k: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, col) of the argmax of F.interpolate(logits (B,N,h,w), out_size, bilinear) per (B, N)."""
    B, N, h, w = logits.shape
    Ho, Wo = out_size
    k = min(k, h * w - 1)
    if k < 1:
        idx = F.interpolate(logits, size=out_size, mode="bilinear", align_corners=False).flatten(2).argmax(-1)
        return idx // Wo, idx % Wo
    y0, y1, wy, row_members = _tables(Ho, h, logits.device)
    x0, x1, wx, col_members = _tables(Wo, w, logits.device)
    top = logits.flatten(2).topk(k + 1, dim=-1)
    rows = row_members[top.indices[..., :k] // w]              # (B,N,k,mr)
    cols = col_members[top.indices[..., :k] % w]               # (B,N,k,mc)
    r, c = rows[..., :, None], cols[..., None, :]
    valid = (r >= 0) & (c >= 0)
    r, c = r.clamp(min=0), c.clamp(min=0)
    flat = logits.flatten(2)
    g = lambda yy, xx: torch.gather(flat, 2, (yy[r] * w + xx[c]).flatten(2)).view(r.shape[:3] + (r.shape[3], c.shape[4]))  # noqa: E731
    ly, lx = wy[r], wx[c]
    vals = (1 - ly) * ((1 - lx) * g(y0, x0) + lx * g(y0, x1)) + ly * ((1 - lx) * g(y1, x0) + lx * g(y1, x1))
    vals = vals.masked_fill(~valid, float("-inf")).flatten(2)
    flat_idx = (r * Wo + c).expand(vals.shape[:2] + r.shape[2:3] + (r.shape[3], c.shape[4])).flatten(2)
    best = vals.max(-1, keepdim=True).values
    idx = torch.where(vals == best, flat_idx, torch.full_like(flat_idx, Ho * Wo)).min(-1).values
    certain = best[..., 0] > top.values[..., k]
    if not certain.all():
        full = F.interpolate(logits, size=out_size, mode="bilinear", align_corners=False).flatten(2).argmax(-1)
        idx = torch.where(certain, idx, full)
    return idx // Wo, idx % Wo
