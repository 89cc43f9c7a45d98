"""Where training windows come from."""
from __future__ import annotations

from dataclasses import dataclass, field

SOURCES = ("sim",)


@dataclass
class DataConfig:
    source: str = "sim"                 # sim: scripted-expert demos generated in the experiment's env
    protocol: str = "left_right"        # configs/protocol/<name>.yaml (or a path): its 'train' split
    protocol_overrides: list[str] = field(default_factory=list)   # e.g. ["rows=8", "cols=8"]
    camera: str = ""                    # empty: the env's first camera
    out_of_image: str = "drop"          # drop | clip | error (targets leaving the image)
    shift_px: int = 0                   # random translation augmentation (image and K together)
    clip_frames: int = 1                # > 1: add a video clip for diffusion backbones (frame 0 = now)
    clip_stride: int = 1

    def validate(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"data.source must be one of {SOURCES}, got '{self.source}'")
