"""Heads: turn backbone features (B, C, h, w) into per-step action predictions."""
from .base import HEADS, Decoded, Head, HeadConfig, heatmap_heads  # noqa: F401
from . import global_mlp, motion_tracks, para  # noqa: F401  (register)
