"""Dataset statistics a policy carries with it (bin ranges, normalisation), saved as stats.json."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Stats:
    """Ranges and moments of the training targets. Heights are above the support plane."""

    height_low: float
    height_high: float
    gripper_low: float
    gripper_high: float
    xyz_mean: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    xyz_std: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    gripper_mean: float = 0.0
    gripper_std: float = 1.0
    # per future step k: the farthest the step-k target lay from the current EE pixel in any training
    # window (policy-image pixels); PARA's reach_margin decoding searches each step's peak within it
    reach_px: list[float] | None = None

    @classmethod
    def from_data(cls, xyz, heights, gripper, margin: float = 0.05, reach_px=None) -> "Stats":
        """Statistics of arrays of targets; bin ranges are widened by `margin` of their span so
        that test-time values slightly beyond the training range are not all clipped. `reach_px`
        (N_W,) is stored as given (see the field)."""
        xyz, heights, gripper = (np.asarray(a, dtype=np.float64) for a in (xyz, heights, gripper))
        for name, a in (("xyz", xyz), ("heights", heights), ("gripper", gripper)):
            if a.size == 0 or not np.isfinite(a).all():
                raise ValueError(f"Stats.from_data: '{name}' is empty or has NaN/Inf")

        def span(a):
            lo, hi = float(a.min()), float(a.max())
            pad = max(hi - lo, 1e-3) * margin
            return lo - pad, hi + pad + (1e-3 if hi - lo < 1e-6 else 0.0)

        (hl, hh), (gl, gh) = span(heights), span(gripper)
        xyz = xyz.reshape(-1, 3)
        return cls(hl, hh, gl, gh, xyz.mean(0).tolist(), np.maximum(xyz.std(0), 1e-3).tolist(),
                   float(gripper.mean()), float(max(gripper.std(), 1e-3)),
                   None if reach_px is None else np.asarray(reach_px, dtype=np.float64).tolist())

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> "Stats":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"policy statistics missing: {path}")
        try:
            return cls(**json.loads(path.read_text()))
        except (TypeError, ValueError) as e:                # json.JSONDecodeError is a ValueError
            raise ValueError(f"{path}: bad statistics ({e})") from None
