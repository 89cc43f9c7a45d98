"""Chunk-level gripper decoding, for every head.

Each step's gripper is decoded on its own, so a chunk can flicker (closed x4, open x2, closed x6)
and drop the object mid-carry. An expert chunk of N_W steps changes its gripper at most once (grasp
or release). `one_switch` fits that shape: the open/closed sequence with at most one change that
disagrees with the fewest per-step predictions; steps that disagree take the mean value of the
agreeing steps of their segment. `median` is a running median over `width` steps (edges repeated),
which removes blips shorter than half the window.

Snapping (`snap="lowest"`): in pick-and-place the gripper closes and opens where the end effector's
path bottoms out (down to the object, close, lift; down to the target, open, lift). Out of the
training region PARA's per-step gripper read-out can lag the heights by a step (descend, pause,
then "close" on the first lifting step, above the rim): each switch moves to the lowest step within
`window` steps of it (the nearest to it among equally low ones), never past a neighbouring switch.
A prior of the task family, not of one scene: off unless a preset's validation chooses it.
"""
from __future__ import annotations

import torch

from ..episodes import GRIPPER_CLOSED_AT

FILTERS = ("none", "one_switch", "median")
SNAPS = ("none", "lowest")


def one_switch(gripper: torch.Tensor) -> torch.Tensor:
    """(B, N) gripper values -> the same, made open/closed with at most one change per row."""
    closed = (gripper >= GRIPPER_CLOSED_AT).to(gripper.dtype)
    B, N = closed.shape
    before = torch.cat([closed.new_zeros(B, 1), closed.cumsum(-1)], -1)          # closed steps before switch s
    after = before[:, -1:] - before
    s = torch.arange(N + 1, device=gripper.device, dtype=gripper.dtype)
    # cost of (state before, state after) per switch point s; disagreements counted
    costs = torch.stack([before + after, before + (N - s) - after,
                         s - before + after, s - before + (N - s) - after], -1)     # (B, N+1, 4): 00 01 10 11
    best = costs.flatten(1).argmin(-1)
    switch, pair = best // 4, best % 4
    steps = torch.arange(N, device=gripper.device)
    fit = torch.where(steps < switch[:, None], (pair // 2)[:, None], (pair % 2)[:, None]).to(gripper.dtype)
    agree = fit == closed
    out = gripper.clone()
    for segment in (steps < switch[:, None], steps >= switch[:, None]):
        keep = (segment & agree).to(gripper.dtype)
        mean = (gripper * keep).sum(-1, keepdim=True) / keep.sum(-1, keepdim=True).clamp(min=1)
        out = torch.where(segment & ~agree, mean.expand_as(out), out)
    return out


def running_median(gripper: torch.Tensor, width: int) -> torch.Tensor:
    """(B, N) -> the median of each step's window of `width` steps (odd), edges repeated."""
    padded = torch.nn.functional.pad(gripper[:, None], (width // 2, width // 2), mode="replicate")[:, 0]
    return padded.unfold(-1, width, 1).median(-1).values


def snap_to_lowest(gripper: torch.Tensor, z: torch.Tensor, window: int) -> torch.Tensor:
    """(B, N) gripper values and the steps' world heights z -> each open/closed switch moved to the lowest
    step within `window` steps of it; the steps it passes take the value of the side they join."""
    closed = gripper >= GRIPPER_CLOSED_AT
    out = gripper.clone()
    for b in range(gripper.shape[0]):
        switches = (closed[b, 1:] != closed[b, :-1]).nonzero()[:, 0].add(1).tolist()
        for j, s in enumerate(switches):
            lo = switches[j - 1] + 1 if j else 0                                 # strictly between its neighbours
            hi = switches[j + 1] - 1 if j + 1 < len(switches) else gripper.shape[1] - 1
            steps = torch.arange(max(lo, s - window), min(hi, s + window) + 1, device=z.device)
            heights = z[b, steps]
            low = steps[heights <= heights.min() + 1e-6]
            t = int(low[(low - s).abs().argmin()])
            if t < s:
                out[b, t:s] = gripper[b, s]
            elif t > s:
                out[b, s:t] = gripper[b, s - 1]
    return out


def check_snap(mode: str, window: int) -> None:
    if mode not in SNAPS:
        raise ValueError(f"policy.gripper_snap must be one of {SNAPS}, got '{mode}'")
    if window < 1:
        raise ValueError(f"policy.gripper_snap_window must be >= 1, got {window}")


def check_filter(mode: str, width: int) -> None:
    if mode not in FILTERS:
        raise ValueError(f"policy.gripper_filter must be one of {FILTERS}, got '{mode}'")
    if mode == "median" and (width < 3 or width % 2 == 0):
        raise ValueError(f"policy.gripper_filter_width must be odd and >= 3, got {width}")


def filter_gripper(gripper: torch.Tensor, mode: str, width: int = 5) -> torch.Tensor:
    check_filter(mode, width)
    if mode == "none":
        return gripper
    if mode == "median":
        return running_median(gripper, width)
    return one_switch(gripper)
