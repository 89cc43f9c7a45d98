"""Build the training dataset a DataConfig describes, from the source it names (DATA_SOURCES)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ..envs import ENVS, EnvConfig
from ..episodes import Episode
from .config import DataConfig
from .overlay import point_track_frames
from .windows import WindowDataset


def sim_episodes(cfg: DataConfig, env_cfg: EnvConfig, seed: int, progress: bool) -> list[Episode]:
    """One scripted-expert demo per train spec of the protocol, in the configured env."""
    from ..envs.expert import generate_demos          # sim-only dependency
    from ..scenes import load_protocol, specs
    protocol = load_protocol(cfg.protocol, cfg.protocol_overrides)
    env = ENVS.build(env_cfg)
    try:
        return generate_demos(env, specs(protocol, "train"), seed=seed, progress=progress)
    finally:
        env.close()


def lerobot_episodes(cfg: DataConfig, env_cfg: EnvConfig, seed: int, progress: bool) -> list[Episode]:
    """The episodes of the LeRobot v3 dataset at cfg.root or cfg.repo_id (env_cfg unused)."""
    from .lerobot import LeRobotSource, dataset_root
    src = LeRobotSource(dataset_root(cfg.root, cfg.repo_id), backend=cfg.video_backend)
    return [src.load_episode(i, lazy=cfg.decode == "lazy") for i in (cfg.episodes or range(len(src)))]


# data.source -> episodes(cfg, env_cfg, seed, progress): a new source is one function and one entry here
DATA_SOURCES: dict[str, Callable[[DataConfig, EnvConfig, int, bool], list[Episode]]] = {
    "sim": sim_episodes, "lerobot": lerobot_episodes}


def build_dataset(cfg: DataConfig, env_cfg: EnvConfig, n_window: int, seed: int = 0, progress: bool = True):
    """Training windows over the episodes of the configured source (DATA_SOURCES)."""
    cfg.validate()
    return _windows(cfg, DATA_SOURCES[cfg.source](cfg, env_cfg, seed, progress), n_window)


def with_point_track(ep: Episode, radius_px: float, color) -> Episode:
    """The episode with every camera's frames replaced by point-track frames (robot removed, a dot at
    the EE projected with that frame's calibration); needs the per-frame robot masks."""
    cameras = {}
    for name, track in ep.cameras.items():
        if track.masks is None:
            raise ValueError(f"data.overlay: no robot masks for episode {ep.index} (camera '{name}'); sim envs "
                             "record them, a dataset must provide a mask video")
        ee_px, depth = map(np.stack, zip(*(track.camera(t).project_with_depth(ep.ee_pos[t]) for t in range(len(ep)))))
        if (behind := np.flatnonzero(depth <= 0)).size:
            raise ValueError(f"data.overlay: episode {ep.index}, frame {behind[0]}: the EE is behind camera '{name}' "
                             f"({behind.size} frame(s)), so there is no pixel to draw its dot at")
        images = point_track_frames(track.images, track.masks, ee_px, radius_px, tuple(color))
        cameras[name] = replace(track, images=images)
    return replace(ep, cameras=cameras)


def _windows(cfg: DataConfig, episodes: list, n_window: int) -> WindowDataset:
    if cfg.overlay:
        episodes = [with_point_track(ep, cfg.overlay_radius_px, cfg.overlay_color) for ep in episodes]
    return WindowDataset(episodes, n_window, camera=cfg.camera, out_of_image=cfg.out_of_image,
                         shift_px=cfg.shift_px, occluders=cfg.occluders, occluder_size_px=cfg.occluder_size_px,
                         clip_frames=cfg.clip_frames, clip_stride=cfg.clip_stride,
                         image_size=cfg.image_size, crop_scale=cfg.crop_scale)
