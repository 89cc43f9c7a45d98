"""LIBERO demo hdf5 -> Episodes (layout: data/demo_<i>/obs/{<camera>_rgb, ee_pos, gripper_states}, actions).

LIBERO stores images upside-down (OpenGL row order): they are flipped vertically here. The hdf5 has
no calibration, so the caller supplies the agentview K (3,3) and world_from_cam (4,4) (OpenCV axes,
from the simulator); gripper state = the mean finger opening mapped to [0, 1] closed by
`gripper_open_width` (robosuite Panda fingers: ~0.04 m each when open). Actions are LIBERO's delta
commands, so `action` xyz is the next EE position (the last repeats) and its gripper is -1..1 -> 0..1.
The task is the file's language instruction (data.attrs['problem_info']). LIBERO records its demos at
20 Hz; `stride` keeps every k-th frame (2: the LIBERO env's 10 Hz, at which our demos and rollouts run).

    python -m video_para.data.libero_hdf5 DEMO.hdf5 --out DIR [--suite libero_spatial --task-id 0 --stride 2]

converts a demo file into a LeRobot v3 dataset, taking the calibration (K, world_from_cam of the
camera at the task's own pose, and the table height) from the LIBERO simulator (the `libero` extra).
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from ..envs.libero import LiberoConfig
from ..episodes import CameraTrack, Episode, EpisodeError

LIBERO_DEMO_FPS = 20.0                                   # LIBERO's released demos (robosuite control_freq 20)


def load_libero_hdf5(path, K, world_from_cam, task: str = "", fps: float = LIBERO_DEMO_FPS, support_z: float = 0.0,
                     camera: str = "agentview", gripper_open_width: float = 0.04, stride: int = 1) -> list[Episode]:
    """Episodes of every k-th (`stride`) frame of the file's demos, recorded at `fps`: they come out at
    fps / stride."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    K, world_from_cam = np.asarray(K, np.float64), np.asarray(world_from_cam, np.float64)
    fps /= stride
    episodes = []
    with _open_hdf5(path) as f:
        if "data" not in f:
            raise EpisodeError(f"{path}: no 'data' group (not a LIBERO demo file)")
        names = sorted(f["data"], key=lambda n: int(re.sub(r"\D", "", n) or 0))
        task = task or _instruction(f["data"].attrs, path)
        for i, name in enumerate(names):
            demo = f["data"][name]
            try:
                images = np.ascontiguousarray(demo[f"obs/{camera}_rgb"][::stride][:, ::-1])
                ee = demo["obs/ee_pos"][::stride].astype(np.float64)
                fingers = np.abs(demo["obs/gripper_states"][::stride]).mean(-1)
                cmd = demo["actions"][::stride].astype(np.float64)
                gripper = np.clip(1.0 - fingers / gripper_open_width, 0.0, 1.0)
                action = np.c_[np.r_[ee[1:], ee[-1:]], (cmd[:, -1] + 1) / 2]
            except KeyError as exc:
                raise EpisodeError(f"{path}: episode {i} ({name}): missing field {exc}") from exc
            except (ValueError, IndexError) as exc:         # fields of different lengths or shapes
                raise EpisodeError(f"{path}: episode {i} ({name}): malformed fields ({exc})") from None
            T = len(ee)
            track = CameraTrack(images, np.repeat(K[None], T, 0), np.repeat(world_from_cam[None], T, 0))
            episode = Episode(index=i, task=task, fps=fps, timestamps=np.arange(T) / fps, ee_pos=ee, gripper=gripper,
                              action=action, support_z=support_z, cameras={camera: track},
                              meta={"source": str(path), "demo": name})
            try:
                episodes.append(episode.validate())
            except EpisodeError as exc:
                raise EpisodeError(f"{path} ({name}): {exc}") from None
    return episodes


def _instruction(attrs, path) -> str:
    """LIBERO's language instruction (data.attrs['problem_info'] is JSON holding 'language_instruction'),
    else the file's name as LIBERO spells tasks (pick_up_the_..._demo.hdf5 -> 'pick up the ...')."""
    try:
        text = json.loads(attrs["problem_info"])["language_instruction"]
    except (KeyError, TypeError, ValueError):
        text = None
    return text.strip() if isinstance(text, str) and text.strip() else \
        re.sub(r"_demo$", "", Path(path).stem).replace("_", " ")


def _open_hdf5(path):
    import h5py                                          # optional dependency: LIBERO import only
    try:
        return h5py.File(path, "r")
    except OSError as exc:                               # h5py's message does not name the file
        raise EpisodeError(f"{path}: not a readable HDF5 file ({exc})") from None


def simulator_calibration(suite: str, task_id: int, camera: str, height: int, width: int):
    """(Camera, support_z) of a LIBERO task's camera at its own pose, read from the simulator."""
    from ..envs.libero import LiberoEnv                  # builds with the libero extra
    env = LiberoEnv(LiberoConfig(suite=suite, task_id=task_id, camera=camera, image_height=height, image_width=width))
    try:
        return env.base_camera, env.support_z
    finally:
        env.close()


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(prog="python -m video_para.data.libero_hdf5",
                                 description="LIBERO demo hdf5 -> LeRobot v3 dataset with simulator calibration")
    ap.add_argument("path")
    ap.add_argument("--out", required=True)
    ap.add_argument("--suite", default="libero_spatial")
    ap.add_argument("--task-id", type=int, default=0)
    ap.add_argument("--camera", default="agentview")
    default_stride = round(LIBERO_DEMO_FPS / LiberoConfig.fps)
    ap.add_argument("--stride", type=int, default=default_stride,
                    help=f"keep every K-th frame (default {default_stride}: LIBERO records its demos at "
                         f"{LIBERO_DEMO_FPS:g} Hz, the LIBERO env (env.fps), our expert demos and rollouts run at "
                         f"{LiberoConfig.fps:g} Hz, so a policy's window of future frames spans the same time in "
                         "training and in rollouts); the dataset's fps is the file's divided by K")
    a = ap.parse_args(argv)
    with _open_hdf5(a.path) as f:
        first = next(iter(f["data"].values()), None) if "data" in f else None
        if first is None or f"obs/{a.camera}_rgb" not in first:
            raise EpisodeError(f"{a.path}: no data/<demo>/obs/{a.camera}_rgb to size the calibration from")
        height, width = first[f"obs/{a.camera}_rgb"].shape[1:3]
    cam, support_z = simulator_calibration(a.suite, a.task_id, a.camera, height, width)
    episodes = load_libero_hdf5(a.path, cam.K, cam.world_from_cam, support_z=support_z, camera=a.camera,
                                stride=a.stride)
    from .lerobot import write_dataset
    out = write_dataset(episodes, Path(a.out), robot_type="panda")
    lengths = [len(ep) for ep in episodes]
    print(f"[libero_hdf5] {len(episodes)} episodes ({min(lengths)}-{max(lengths)} frames at {episodes[0].fps:g} Hz, "
          f"1 in {a.stride} of the file's {LIBERO_DEMO_FPS:g} Hz) of "
          f"'{episodes[0].task}' from {a.path} -> {out}")
    return out


if __name__ == "__main__":
    main()
