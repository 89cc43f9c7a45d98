"""Backbones: images (+ start keypoint) -> spatial features (B, C, h, w) and an optional aux loss."""
from .base import BACKBONES, Backbone, BackboneConfig, BackboneOutput  # noqa: F401
from . import tiny  # noqa: F401  (register)
from . import svd, dino  # noqa: F401,E401  (register)
