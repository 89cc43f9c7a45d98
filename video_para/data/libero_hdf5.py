"""LIBERO demo hdf5 -> Episodes (layout: data/demo_<i>/obs/{agentview_rgb, ee_pos, gripper_states}, actions).

LIBERO stores images upside-down (OpenGL row order): they are flipped vertically here. The hdf5 has
no calibration, so the caller supplies the agentview K (3,3) and world_from_cam (4,4) (OpenCV axes,
from the simulator); gripper state = the mean finger opening mapped to [0, 1] closed by
`gripper_open_width` (robosuite Panda fingers: ~0.04 m each when open). Actions are LIBERO's delta
commands, so `action` xyz is the next EE position (the last repeats) and its gripper is -1..1 -> 0..1.
"""
from __future__ import annotations

import re

import numpy as np

from .episodes import CameraTrack, Episode, EpisodeError


def load_libero_hdf5(path, K, world_from_cam, task: str = "", fps: float = 20.0, support_z: float = 0.0,
                     camera: str = "agentview", gripper_open_width: float = 0.04) -> list[Episode]:
    import h5py                                          # optional dependency: LIBERO import only
    K, world_from_cam = np.asarray(K, np.float64), np.asarray(world_from_cam, np.float64)
    episodes = []
    with h5py.File(path, "r") as f:
        if "data" not in f:
            raise EpisodeError(f"{path}: no 'data' group (not a LIBERO demo file)")
        names = sorted(f["data"], key=lambda n: int(re.sub(r"\D", "", n) or 0))
        task = task or str(f["data"].attrs.get("problem_info", "")) or str(path)
        for i, name in enumerate(names):
            demo = f["data"][name]
            try:
                images = np.ascontiguousarray(demo["obs/agentview_rgb"][:][:, ::-1])
                ee = demo["obs/ee_pos"][:].astype(np.float64)
                fingers = np.abs(demo["obs/gripper_states"][:]).mean(-1)
                cmd = demo["actions"][:].astype(np.float64)
            except KeyError as exc:
                raise EpisodeError(f"{path}: episode {i} ({name}): missing field {exc}") from exc
            T = len(ee)
            gripper = np.clip(1.0 - fingers / gripper_open_width, 0.0, 1.0)
            action = np.c_[np.r_[ee[1:], ee[-1:]], (cmd[:, -1] + 1) / 2]
            track = CameraTrack(images, np.repeat(K[None], T, 0), np.repeat(world_from_cam[None], T, 0))
            episodes.append(Episode(index=i, task=task, fps=fps, timestamps=np.arange(T) / fps, ee_pos=ee,
                                    gripper=gripper, action=action, support_z=support_z, cameras={camera: track},
                                    meta={"source": str(path), "demo": name}).validate())
    return episodes
