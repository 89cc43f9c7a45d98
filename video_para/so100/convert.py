"""LeRobot datasets recorded with `lerobot-record` on an SO-100/SO-101 -> our calibrated episodes.

    python -m video_para.so100.convert --dataset ~/.cache/huggingface/lerobot/me/pick --calibration camera.json \\
        --out data/pick_video_para [--camera front] [--gripper-open 100] [--gripper-closed 0]

A recording (LeRobot v3.0) holds joint readings (`observation.state`, names `<motor>.pos`, degrees
with `use_degrees=True`), the leader arm's joints as `action`, and camera videos. Here the EE
position of every frame is FK of its joints (the same ArmKinematics the deployment uses), the
action becomes FK of the commanded joints + the gripper command in [0, 1], and the calibration
JSON (python -m video_para.so100.calibrate) is attached to every frame. The result is written with
our LeRobot v3 writer, so it trains with `data.source=lerobot data.root=<out>`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..data.lerobot import LeRobotDataset, write_dataset
from ..episodes import CameraTrack, Episode, EpisodeError
from ..robots.so100.kinematics import ArmKinematics
from ..robots.so100.robot import GripperMap, read_motors
from .calibrate import load_calibration


def _joints(ds: LeRobotDataset, i: int, key: str):
    """Episode i's (T, 5) joints (deg) and (T,) gripper.pos of feature `key`."""
    names = ds.info["features"][key]["names"]
    rows = ds.feature(i, key)
    if rows.shape[1] != len(names):
        raise EpisodeError(f"{ds.root}: episode {i}: '{key}' rows have shape {rows.shape}, names {names}")
    motors = [read_motors(dict(zip(names, r))) for r in rows]
    return np.stack([m[0] for m in motors]), np.array([m[1] for m in motors])


def read_recording(root, calibration, camera: str = "", grip: GripperMap | None = None,
                   kin: ArmKinematics | None = None) -> list[Episode]:
    """Every episode of the lerobot-record dataset at `root`, with EE by FK and the calibration attached."""
    ds, grip, kin = LeRobotDataset(root), grip or GripperMap(), kin or ArmKinematics()
    info_path = ds.root / "meta/info.json"
    for key in ("observation.state", "action"):
        if key not in ds.info["features"]:
            raise KeyError(f"{info_path}: feature '{key}' is missing (an SO-100 recording has the joints there)")
    camera = camera or (ds.cameras[0] if ds.cameras else "")
    if camera not in ds.cameras:
        raise KeyError(f"{info_path}: no video feature 'observation.images.{camera}'; cameras: {ds.cameras}")
    cam, support_z = load_calibration(calibration)
    episodes = []
    for i, m in enumerate(ds.episodes):
        lo, hi = ds.span(i)
        q, g = _joints(ds, i, "observation.state")
        qa, ga = _joints(ds, i, "action")
        frames = np.asarray(ds.frames(camera, i))
        if frames.shape[1:3] != (cam.height, cam.width):
            raise EpisodeError(f"{ds.root}: episode {i}: frames are {frames.shape[2]}x{frames.shape[1]} but "
                               f"{calibration} calibrates {cam.width}x{cam.height}")
        T = hi - lo
        track = CameraTrack(frames, np.repeat(np.asarray(cam.K)[None], T, 0),
                            np.repeat(np.asarray(cam.world_from_cam)[None], T, 0))
        ee = np.stack([kin.fk(r) for r in q])
        action = np.c_[np.stack([kin.fk(r) for r in qa]), [grip.to_unit(v) for v in ga]]
        episodes.append(Episode(index=m["episode_index"], task=(m.get("tasks") or [""])[0], fps=ds.fps,
                                timestamps=np.arange(T) / ds.fps, ee_pos=ee,
                                gripper=np.array([grip.to_unit(v) for v in g]), action=action, support_z=support_z,
                                cameras={camera: track},
                                meta={"source": str(ds.root), "episode": m["episode_index"], "joints": q.tolist()}
                                ).validate())
    return episodes


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(prog="python -m video_para.so100.convert", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, help="local LeRobot v3 dataset recorded by lerobot-record")
    ap.add_argument("--calibration", required=True, help="camera JSON from python -m video_para.so100.calibrate")
    ap.add_argument("--out", required=True)
    ap.add_argument("--camera", default="", help="camera key (default: the first video)")
    ap.add_argument("--gripper-open", type=float, default=100.0)
    ap.add_argument("--gripper-closed", type=float, default=0.0)
    a = ap.parse_args(argv)
    eps = read_recording(a.dataset, a.calibration, a.camera, GripperMap(a.gripper_open, a.gripper_closed))
    out = write_dataset(eps, a.out, robot_type="so100_follower")
    print(f"[convert] {len(eps)} episodes, {sum(len(e) for e in eps)} frames -> {out} "
          f"(train with data.source=lerobot data.root={out})")
    return out


if __name__ == "__main__":
    main()
