"""Runs inside the throwaway LeRobot venv (Python 3.12, lerobot[dataset]); imports nothing of video_para.

  read  ROOT OUT.npz   LeRobotDataset(root=ROOT, video_backend="pyav") with delta_timestamps: saves what
                       LeRobot returns for every frame (images as uint8, calibration, actions, pads).
  write ROOT IN.npz    LeRobotDataset.create -> add_frame -> save_episode -> finalize from the arrays in
                       IN.npz (written by roundtrip.py), with our calibration features.
  bench ROOT N B TH BACKEND W   items/s (one frame + an N-step action chunk) through LeRobotDataset and a
                       DataLoader (batch B, W workers, TH torch threads): `python -m video_para.bench data`.
"""
import json
import sys
import time

import numpy as np
import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset

REPO = "local/video_para_compat"


def read(root: str, out: str) -> None:
    info = json.load(open(f"{root}/meta/info.json"))
    cams = [k for k, f in info["features"].items() if f["dtype"] == "video"]
    dt = 1.0 / info["fps"]
    delta = {"action": [0.0, dt, 2 * dt]} | {k: [-dt, 0.0] for k in cams}
    ds = LeRobotDataset(REPO, root=root, video_backend="pyav", delta_timestamps=delta)
    got = {"num_episodes": ds.num_episodes, "num_frames": ds.num_frames, "fps": ds.fps}
    items = [ds[i] for i in range(len(ds))]
    for key, val in items[0].items():
        if isinstance(val, torch.Tensor):
            arr = torch.stack([it[key] for it in items]).numpy()
            if key in cams:                                  # float [0, 1] (N, 2, C, H, W) -> uint8 NHWC
                arr = np.round(arr * 255).clip(0, 255).astype(np.uint8).transpose(0, 1, 3, 4, 2)
            got[key] = arr
    got["task"] = np.array([it["task"] for it in items])
    np.savez(out, **got)
    print(f"[lerobot] read {ds.num_episodes} episodes / {ds.num_frames} frames from {root}")


def write(root: str, spec: str) -> None:
    d = np.load(spec)
    cam = str(d["camera"])
    T, H, W = d["images"].shape[:3]
    vec = lambda n, names=None: {"dtype": "float32", "shape": (n,), "names": names}   # noqa: E731
    features = {
        f"observation.images.{cam}": {"dtype": "video", "shape": (H, W, 3), "names": ["height", "width", "channels"]},
        "observation.state": vec(4, ["x", "y", "z", "gripper"]), "observation.ee_pos": vec(3, ["x", "y", "z"]),
        "observation.gripper": vec(1, ["gripper"]), "action": vec(4, ["x", "y", "z", "gripper"]),
        "support_z": {"dtype": "float64", "shape": (1,), "names": ["z"]},
        f"observation.cameras.{cam}.K": {"dtype": "float64", "shape": (9,), "names": None},
        f"observation.cameras.{cam}.world_from_cam": {"dtype": "float64", "shape": (16,), "names": None},
    }
    ds = LeRobotDataset.create(REPO, fps=int(d["fps"]), features=features, root=root, robot_type="so100_sim",
                               use_videos=True)
    for e in np.unique(d["episode"]):
        for t in np.flatnonzero(d["episode"] == e):
            ds.add_frame({f"observation.images.{cam}": d["images"][t],
                          "observation.state": np.r_[d["ee_pos"][t], d["gripper"][t]].astype(np.float32),
                          "observation.ee_pos": d["ee_pos"][t].astype(np.float32),
                          "observation.gripper": d["gripper"][t:t + 1].astype(np.float32),
                          "action": d["action"][t].astype(np.float32), "support_z": d["support_z"][t:t + 1],
                          f"observation.cameras.{cam}.K": d["K"][t].reshape(9),
                          f"observation.cameras.{cam}.world_from_cam": d["world_from_cam"][t].reshape(16),
                          "task": str(d["task"][t])})
        ds.save_episode()
    ds.finalize()
    print(f"[lerobot] wrote {len(np.unique(d['episode']))} episodes / {T} frames to {root}")


def bench(root: str, n: int, batch: int, threads: int, backend: str, workers: int) -> None:
    """One setting per process: LeRobot 0.6.1 caches torchcodec decoders per process, and a decoder used in
    the parent before DataLoader workers fork fails in them ('Could not push packet to decoder')."""
    torch.set_num_threads(threads)
    dt = 1.0 / json.load(open(f"{root}/meta/info.json"))["fps"]
    ds = LeRobotDataset(REPO, root=root, video_backend=backend, delta_timestamps={"action": [k * dt for k in range(n)]})
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers)
    t0, k = time.perf_counter(), 0
    for items in loader:
        k += len(items["action"])
    print(f"[lerobot] LeRobotDataset video_backend={backend} workers={workers}: "
          f"{k / (time.perf_counter() - t0):.0f} items/s ({k} items, batch {batch})")


if __name__ == "__main__":
    commands = {"read": read, "write": write,
                "bench": lambda r, n, b, th, be, w: bench(r, int(n), int(b), int(th), be, int(w))}
    commands[sys.argv[1]](*sys.argv[2:])
