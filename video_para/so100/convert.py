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
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..data.video import open_video
from ..episodes import CameraTrack, Episode, EpisodeError
from ..robots.so100.kinematics import ArmKinematics
from ..robots.so100.robot import GripperMap, read_motors
from .calibrate import load_calibration


def _read_parquets(folder: Path) -> pa.Table:
    files = sorted(folder.rglob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{folder}: no parquet files (not a LeRobot v3 dataset?)")
    return pa.concat_tables([pq.read_table(f) for f in files])


def _joint_rows(table: pa.Table, key: str, names: list[str], lo: int, hi: int, root: Path, ep: int):
    """(T, 5) joints (deg) and (T,) gripper.pos of feature `key` over rows lo..hi."""
    rows = np.asarray(table.column(key).slice(lo, hi - lo).to_pylist(), dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != len(names):
        raise EpisodeError(f"{root}: episode {ep}: '{key}' rows have shape {rows.shape}, names {names}")
    motors = [read_motors(dict(zip(names, r))) for r in rows]
    return np.stack([m[0] for m in motors]), np.array([m[1] for m in motors])


def read_recording(root, calibration, camera: str = "", grip: GripperMap | None = None,
                   kin: ArmKinematics | None = None) -> list[Episode]:
    """Every episode of the lerobot-record dataset at `root`, with EE by FK and the calibration attached."""
    root, grip, kin = Path(root), grip or GripperMap(), kin or ArmKinematics()
    info_path = root / "meta/info.json"
    if not info_path.exists():
        raise FileNotFoundError(f"{info_path}: not a LeRobot v3 dataset")
    info = json.loads(info_path.read_text())
    feats, fps = info["features"], float(info["fps"])
    for key in ("observation.state", "action"):
        if key not in feats:
            raise KeyError(f"{info_path}: feature '{key}' is missing (an SO-100 recording has the joints there)")
    videos = [k for k, f in feats.items() if f["dtype"] == "video"]
    key = f"observation.images.{camera}" if camera else (videos[0] if videos else "")
    if key not in videos:
        raise KeyError(f"{info_path}: no video feature '{key}'; videos: {videos}")
    cam, support_z = load_calibration(calibration)
    data = _read_parquets(root / "data")
    order = np.lexsort((np.asarray(data.column("frame_index")), np.asarray(data.column("episode_index"))))
    data = data.take(pa.array(order))
    episodes = []
    for m in _read_parquets(root / "meta/episodes").to_pylist():
        i, lo, hi = m["episode_index"], m["dataset_from_index"], m["dataset_to_index"]
        q, g = _joint_rows(data, "observation.state", feats["observation.state"]["names"], lo, hi, root, i)
        qa, ga = _joint_rows(data, "action", feats["action"]["names"], lo, hi, root, i)
        path = root / info["video_path"].format(video_key=key, chunk_index=m[f"videos/{key}/chunk_index"],
                                                file_index=m[f"videos/{key}/file_index"])
        start = int(round(m[f"videos/{key}/from_timestamp"] * fps))
        frames = open_video(path).frames(np.arange(start, start + hi - lo))
        if frames.shape[1:3] != (cam.height, cam.width):
            raise EpisodeError(f"{path}: frames are {frames.shape[2]}x{frames.shape[1]} but {calibration} "
                               f"calibrates {cam.width}x{cam.height}")
        T = hi - lo
        track = CameraTrack(frames, np.repeat(np.asarray(cam.K)[None], T, 0),
                            np.repeat(np.asarray(cam.world_from_cam)[None], T, 0))
        ee = np.stack([kin.fk(r) for r in q])
        action = np.c_[np.stack([kin.fk(r) for r in qa]), [grip.to_unit(v) for v in ga]]
        episodes.append(Episode(index=i, task=(m.get("tasks") or [""])[0], fps=fps, timestamps=np.arange(T) / fps,
                                ee_pos=ee, gripper=np.array([grip.to_unit(v) for v in g]), action=action,
                                support_z=support_z, cameras={key.removeprefix("observation.images."): track},
                                meta={"source": str(root), "episode": i, "joints": q.tolist()}).validate())
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
    from ..data.lerobot import write_dataset
    eps = read_recording(a.dataset, a.calibration, a.camera, GripperMap(a.gripper_open, a.gripper_closed))
    out = write_dataset(eps, a.out, robot_type="so100_follower")
    print(f"[convert] {len(eps)} episodes, {sum(len(e) for e in eps)} frames -> {out} "
          f"(train with data.source=lerobot data.root={out})")
    return out


if __name__ == "__main__":
    main()
