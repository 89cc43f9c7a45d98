"""Where training windows come from. Ready-made choices: configs/data/*.yaml, used as `data=@data/<name>`
(sim_left_right: scripted demos in the experiment's env; lerobot_local: a LeRobot v3 dataset on disk,
decoded lazily and crop-resized to the policy's image size; see each file's header)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .overlay import ORANGE

DECODE = ("memory", "lazy")


@dataclass
class DataConfig:
    source: str = "sim"                 # sim: scripted-expert demos generated in the experiment's env;
                                        # lerobot: a local LeRobot v3 dataset at `root` (data.lerobot)
    root: str = ""                      # source=lerobot: dataset directory, or
    repo_id: str = ""                   # a LeRobot repo id (user/name) in the local LeRobot cache, offline:
                                        # $HF_LEROBOT_HOME/<repo_id>, default ~/.cache/huggingface/lerobot/<repo_id>
    episodes: list[int] = field(default_factory=list)   # source=lerobot: episode indices (empty: all)
    protocol: str = "left_right"        # configs/protocol/<name>.yaml (or a path): its 'train' split
    protocol_overrides: list[str] = field(default_factory=list)   # e.g. ["rows=8", "cols=8"]
    camera: str = ""                    # empty: the env's first camera
    out_of_image: str = "drop"          # drop | clip | error (targets leaving the image)
    shift_px: int = 0                   # random translation augmentation (image and K together)
    occluders: int = 0                  # > 0: up to this many random solid-colour rectangles pasted per window
    occluder_size_px: list[int] = field(default_factory=lambda: [6, 20])   # their side range [lo, hi] (px)
    clip_frames: int = 1                # > 1: add a video clip for diffusion backbones (frame 0 = now)
    clip_stride: int = 1
    decode: str = "memory"              # source=lerobot: memory (decode every frame up front) | lazy (decode the
                                        # frames of each window on access: datasets bigger than RAM)
    video_backend: str = "auto"         # auto | torchcodec | pyav | decord (data/video.py)
    image_size: list[int] = field(default_factory=list)      # [H, W] random-resized-crop output (the policy's
                                                             # image size); empty: frames at recorded size
    crop_scale: list[float] = field(default_factory=lambda: [1.0, 1.0])   # area fraction range of that crop
    overlay: bool = False               # point-track frames: robot masked out, a dot at the EE (data/overlay.py)
    overlay_radius_px: float = 4.0
    overlay_color: list[int] = field(default_factory=lambda: list(ORANGE))

    def validate(self) -> None:
        from .sources import DATA_SOURCES                # the registry imports this module
        if self.source not in DATA_SOURCES:
            raise ValueError(f"data.source must be one of {tuple(DATA_SOURCES)}, got '{self.source}'")
        if self.source == "lerobot" and bool(self.root) == bool(self.repo_id):
            raise ValueError("data.source=lerobot needs one of data.root (a LeRobot v3 dataset directory) or "
                             f"data.repo_id (user/name in the local LeRobot cache); got root='{self.root}', "
                             f"repo_id='{self.repo_id}'")
        if self.decode not in DECODE:
            raise ValueError(f"data.decode must be one of {DECODE}, got '{self.decode}'")
        if self.image_size and (len(self.image_size) != 2 or min(self.image_size) <= 0):
            raise ValueError(f"data.image_size must be [H, W] with positive sizes (or empty), got {self.image_size}")
        if self.occluders < 0 or len(self.occluder_size_px) != 2 or not 1 <= self.occluder_size_px[0] <= self.occluder_size_px[1]:
            raise ValueError(f"data.occluders must be >= 0 and data.occluder_size_px [lo, hi] with 1 <= lo <= hi, "
                             f"got {self.occluders}, {self.occluder_size_px}")
        if len(self.crop_scale) != 2 or not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ValueError(f"data.crop_scale must be [lo, hi] with 0 < lo <= hi <= 1, got {self.crop_scale}")
        if self.overlay and (self.overlay_radius_px <= 0 or len(self.overlay_color) != 3
                             or not all(0 <= c <= 255 for c in self.overlay_color)):
            raise ValueError("data.overlay needs overlay_radius_px > 0 and overlay_color = [R, G, B] in 0..255")
