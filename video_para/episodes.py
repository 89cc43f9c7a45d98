"""The in-memory episode: what simulators and importers produce and dataset writers consume.

Conventions: world frame z up; `support_z` is the height of the support surface (table top) in that
frame; gripper state and command are in [0, 1] (0 open, 1 closed); every camera carries K and
world_from_cam *per frame*, so moving-camera and viewpoint-grid datasets need no special case.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import Camera

GRIPPER_CLOSED_AT = 0.5   # a gripper state or command in [0, 1] at or above this is closed (sims, metrics)


class EpisodeError(ValueError):
    """Bad episode data; the message names the episode, frame and field."""


@dataclass
class CameraTrack:
    images: np.ndarray            # (T, H, W, 3) uint8, or a lazy data.video.VideoFrames
    K: np.ndarray                 # (T, 3, 3)
    world_from_cam: np.ndarray    # (T, 4, 4)
    masks: np.ndarray | None = None   # (T, H, W) bool robot pixels (sim envs; point-track overlay)

    def camera(self, t: int) -> Camera:
        return Camera(self.K[t], self.world_from_cam[t], self.images.shape[2], self.images.shape[1])


@dataclass
class Episode:
    index: int
    task: str
    fps: float
    timestamps: np.ndarray        # (T,) seconds, strictly increasing
    ee_pos: np.ndarray            # (T, 3) world end-effector position
    gripper: np.ndarray           # (T,) gripper state in [0, 1]
    action: np.ndarray            # (T, 4) commanded world xyz + gripper
    support_z: float
    cameras: dict[str, CameraTrack] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)   # e.g. scene spec, grid cell, viewpoint (JSON-able)

    def __len__(self) -> int:
        return len(self.timestamps)

    def _err(self, msg: str, frame: int | None = None) -> EpisodeError:
        where = f"episode {self.index}" + (f", frame {frame}" if frame is not None else "")
        return EpisodeError(f"{where}: {msg}")

    def validate(self) -> "Episode":
        T = len(self.timestamps)
        if T == 0:
            raise self._err("no frames")
        for name, arr, shape in (("timestamps", self.timestamps, (T,)), ("ee_pos", self.ee_pos, (T, 3)),
                                 ("gripper", self.gripper, (T,)), ("action", self.action, (T, 4))):
            arr = np.asarray(arr)
            if arr.shape != shape:
                raise self._err(f"field '{name}' has shape {arr.shape}, expected {shape}")
            bad = ~np.isfinite(arr.reshape(T, -1)).all(-1)
            if bad.any():
                raise self._err(f"field '{name}' is NaN/Inf", int(np.argmax(bad)))
        back = np.diff(self.timestamps) <= 0
        if back.any():
            raise self._err("timestamps are not strictly increasing", int(np.argmax(back)) + 1)
        if not np.isfinite(self.support_z):
            raise self._err("support_z is NaN/Inf")
        if not self.cameras:
            raise self._err("no camera: PARA needs at least one calibrated image stream")
        for key, cam in self.cameras.items():
            if cam.K is None or cam.world_from_cam is None:
                raise self._err(f"camera '{key}' has no calibration (K / world_from_cam)")
            imgs = cam.images if hasattr(cam.images, "dtype") else np.asarray(cam.images)  # lazy: no decode
            if imgs.ndim != 4 or imgs.shape[0] != T or imgs.shape[-1] != 3 or imgs.dtype != np.uint8:
                raise self._err(f"camera '{key}' images are {imgs.shape} {imgs.dtype}, expected ({T}, H, W, 3) uint8")
            masks = None if cam.masks is None else np.asarray(cam.masks)
            if masks is not None and (masks.shape != imgs.shape[:3] or masks.dtype != bool):
                raise self._err(f"camera '{key}' masks are {masks.shape} {masks.dtype}, expected {imgs.shape[:3]} bool")
            if np.asarray(cam.K).shape != (T, 3, 3) or np.asarray(cam.world_from_cam).shape != (T, 4, 4):
                raise self._err(f"camera '{key}' calibration must be per frame: K ({T},3,3), world_from_cam ({T},4,4)")
            for t in range(T):                          # Camera checks shape, NaN/Inf, rigidity, reflection
                try:
                    cam.camera(t)
                except ValueError as exc:
                    raise self._err(f"camera '{key}' calibration: {exc}", t) from None
        return self
