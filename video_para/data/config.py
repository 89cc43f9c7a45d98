"""Where training windows come from."""
from __future__ import annotations

from dataclasses import dataclass, field

from .overlay import ORANGE

SOURCES = ("sim", "lerobot")


@dataclass
class DataConfig:
    source: str = "sim"                 # sim: scripted-expert demos generated in the experiment's env;
                                        # lerobot: a local LeRobot v3 dataset at `root` (data.lerobot)
    root: str = ""                      # source=lerobot: dataset directory
    episodes: list[int] = field(default_factory=list)   # source=lerobot: episode indices (empty: all)
    protocol: str = "left_right"        # configs/protocol/<name>.yaml (or a path): its 'train' split
    protocol_overrides: list[str] = field(default_factory=list)   # e.g. ["rows=8", "cols=8"]
    camera: str = ""                    # empty: the env's first camera
    out_of_image: str = "drop"          # drop | clip | error (targets leaving the image)
    shift_px: int = 0                   # random translation augmentation (image and K together)
    clip_frames: int = 1                # > 1: add a video clip for diffusion backbones (frame 0 = now)
    clip_stride: int = 1
    overlay: bool = False               # point-track frames: robot masked out, a dot at the EE (data/overlay.py)
    overlay_radius_px: float = 4.0
    overlay_color: list[int] = field(default_factory=lambda: list(ORANGE))

    def validate(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"data.source must be one of {SOURCES}, got '{self.source}'")
        if self.source == "lerobot" and not self.root:
            raise ValueError("data.source=lerobot needs data.root (a LeRobot v3 dataset directory)")
        if self.overlay and (self.overlay_radius_px <= 0 or len(self.overlay_color) != 3
                             or not all(0 <= c <= 255 for c in self.overlay_color)):
            raise ValueError("data.overlay needs overlay_radius_px > 0 and overlay_color = [R, G, B] in 0..255")
