"""Sub-pixel peak of a heatmap from its feature-grid logits (B, N, h, w), without upsampling it.

The argmax of the bilinearly upsampled map sits next to a grid node (para.py), so it is quantised to
the feature stride. Both refinements start from the largest node and return continuous node
coordinates (node i's centre at i; image pixel = (i + 0.5) * stride):
  * quadratic: a parabola through the node and its two neighbours along each axis, vertex within
    half a node (exact for a Gaussian-shaped peak, whose logits are quadratic);
  * softargmax: the mean position under the softmax of the upsampled map (the distribution the
    fine-grid cross-entropy trains) within two nodes of the peak, evaluated on that window only,
    at the output grid's spacing. A peak much sharper than the stride is pulled towards the node:
    the upsampled map itself is piecewise bilinear.
Beyond the outermost nodes the upsampled map is flat (border clamping), so windows replicate the
border node and softargmax leaves out positions outside the image.
"""
from __future__ import annotations

from functools import lru_cache

import torch

MODES = ("none", "quadratic", "softargmax")


def _window(logits: torch.Tensor, r: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(row, col) of the largest node (B, N) and the logits within r nodes of it (B, N, 2r+1, 2r+1),
    border replicated."""
    B, N, h, w = logits.shape
    idx = logits.flatten(2).argmax(-1)
    row, col = idx // w, idx % w
    d = torch.arange(-r, r + 1, device=logits.device)
    rr = (row[..., None] + d).clamp(0, h - 1)
    cc = (col[..., None] + d).clamp(0, w - 1)
    patch = logits.flatten(2).gather(2, (rr[..., :, None] * w + cc[..., None, :]).flatten(2))
    return row, col, patch.view(B, N, 2 * r + 1, 2 * r + 1)


def quadratic_peak(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Continuous (row, col) node coordinates (B, N) of the peak: the vertex of a parabola through
    the largest node and its neighbours, per axis, clamped to half a node."""
    row, col, p = _window(logits)
    lo, hi = p[..., (0, 1), (1, 0)], p[..., (2, 1), (1, 2)]        # (up, left), (down, right)
    curv = lo - 2 * p[..., 1:2, 1] + hi
    # the largest node has curv <= 0; a flat triple (curv = 0) keeps the node
    off = torch.where(curv < 0, 0.5 * (lo - hi) / curv.clamp(max=-1e-12), torch.zeros_like(curv)).clamp(-0.5, 0.5)
    return row + off[..., 0], col + off[..., 1]


@lru_cache(maxsize=16)
def _interp(steps: int, r: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Offsets t in (-r, r) at `steps` samples per node (the output grid's cell centres when steps is
    even), and the (2*r*steps, 2r+1) linear-interpolation weights of nodes -r..r at each."""
    t = (torch.arange(2 * r * steps, device=device, dtype=torch.float32) + 0.5) / steps - r
    nodes = torch.arange(-r, r + 1, device=device, dtype=torch.float32)
    return t, (1 - (t[:, None] - nodes).abs()).clamp(min=0)


def softargmax_peak(logits: torch.Tensor, out_size, r: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Continuous (row, col) node coordinates (B, N): the soft-argmax of the upsampled map within r
    nodes of the largest node (r = 2: a window that holds a peak a few strides wide)."""
    h, w = logits.shape[-2:]
    row, col, p = _window(logits, r)
    ty, ay = (a.to(p.dtype) for a in _interp(max(1, round(out_size[0] / h)), r, logits.device))
    tx, ax = (a.to(p.dtype) for a in _interp(max(1, round(out_size[1] / w)), r, logits.device))
    vals = ay @ p @ ax.T                                                  # (B, N, Sy, Sx)
    y, x = row[..., None] + ty, col[..., None] + tx                       # (B, N, S) node coordinates
    inside_y, inside_x = (y >= -0.5) & (y <= h - 0.5), (x >= -0.5) & (x <= w - 0.5)
    vals = vals.masked_fill(~(inside_y[..., :, None] & inside_x[..., None, :]), float("-inf"))
    prob = vals.flatten(2).softmax(-1).view(vals.shape)
    return (prob.sum(-1) * y).sum(-1), (prob.sum(-2) * x).sum(-1)
