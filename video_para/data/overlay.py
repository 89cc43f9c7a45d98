"""Point-track overlay: the embodiment-agnostic pretraining frames (robot removed, EE drawn as a dot).

The robot is masked out and filled from a background: the caller's `background` image (H,W,3) if
given, otherwise a per-pixel temporal median of the frames where that pixel is not robot (a static
scene seen past a moving arm); pixels that are robot in every frame take the mean non-robot colour
of their frame. Then a filled circle of `radius_px` is drawn at the EE pixel (pixel centres at +0.5).
"""
from __future__ import annotations

import warnings

import numpy as np

ORANGE = (255, 140, 0)


def _background(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    free = np.where(masks[..., None], np.nan, images.astype(np.float64))
    with warnings.catch_warnings():                      # all-robot pixels give NaN (filled later)
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(free, axis=0)


def point_track_frames(images: np.ndarray, robot_masks: np.ndarray, ee_pixels: np.ndarray, radius_px: float,
                       color=ORANGE, background: np.ndarray | None = None) -> np.ndarray:
    """images (T,H,W,3) uint8, robot_masks (T,H,W) bool, ee_pixels (T,2) (u,v) -> new (T,H,W,3) uint8."""
    images, masks = np.asarray(images), np.asarray(robot_masks, bool)
    if images.ndim != 4 or images.dtype != np.uint8 or masks.shape != images.shape[:3]:
        raise ValueError(f"point_track_frames: images {images.shape} {images.dtype} and robot_masks "
                         f"{masks.shape} must be (T,H,W,3) uint8 and (T,H,W) bool")
    T, H, W = masks.shape
    bg = np.asarray(background, np.float64) if background is not None else _background(images, masks)
    out = images.copy()
    vv, uu = np.mgrid[0:H, 0:W] + 0.5
    for t in range(T):
        fill = np.broadcast_to(bg, (H, W, 3)).copy()
        holes = np.isnan(fill).any(-1)
        if holes.any():
            fill[holes] = images[t][~masks[t]].mean(0) if (~masks[t]).any() else 0
        out[t][masks[t]] = np.round(fill[masks[t]]).astype(np.uint8)
        u, v = ee_pixels[t]
        out[t][(uu - u) ** 2 + (vv - v) ** 2 <= radius_px ** 2] = color
    return out
