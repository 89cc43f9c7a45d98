"""Data pipeline throughput: write a synthetic mp4 LeRobot v3 dataset, time decoding and windows.

python -m video_para.bench data [episodes=8] [frames=40] [size=128]
Prints write time, PyAV decode ms/frame (whole episodes) and samples/s through a DataLoader with
0 and 2 workers. Synthetic episodes: textured frames with a dot at the projected EE.
"""
from __future__ import annotations

import tempfile
import time

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..data.config import DataConfig
from ..data.episodes import CameraTrack, Episode
from ..data.lerobot import LeRobotSource, write_dataset
from ..data.sources import build_dataset
from ..geometry import Camera


def synthetic_episode(index: int, T: int, size: int) -> Episode:
    rng = np.random.default_rng(index)
    K = np.array([[size, 0, size / 2], [0, size, size / 2], [0, 0, 1.0]])
    cam = Camera.look_at([0.0, -0.8, 0.9], [0.0, 0.0, 0.0], K, width=size, height=size)
    ee = np.c_[np.linspace(-0.1, 0.1, T), rng.uniform(-0.05, 0.05, T), np.linspace(0.3, 0.1, T)]
    images = rng.integers(0, 80, (1, size, size, 3), dtype=np.uint8).repeat(T, 0)
    vv, uu = np.mgrid[0:size, 0:size] + 0.5
    for t in range(T):
        u, v = cam.project(ee[t])
        images[t][(uu - u) ** 2 + (vv - v) ** 2 < (size / 20) ** 2] = (255, 140, 0)
    track = CameraTrack(images, np.repeat(cam.K[None], T, 0), np.repeat(cam.world_from_cam[None], T, 0))
    return Episode(index, "reach", 10.0, np.arange(T) / 10.0, ee, np.zeros(T), np.c_[ee, np.zeros(T)], 0.0,
                   {"front": track})


def main(argv: list[str]) -> None:
    args = dict(a.split("=", 1) for a in argv)
    n_ep, T, size = int(args.get("episodes", 8)), int(args.get("frames", 40)), int(args.get("size", 128))
    eps = [synthetic_episode(i, T, size) for i in range(n_ep)]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        root = write_dataset(eps, f"{tmp}/ds")
        print(f"[data] write {n_ep}x{T} frames {size}px (libx264): {time.perf_counter() - t0:.2f} s")
        src = LeRobotSource(root)
        t0 = time.perf_counter()
        for i in range(n_ep):
            src.load_episode(i)
        print(f"[data] pyav decode (load_episode): {(time.perf_counter() - t0) / (n_ep * T) * 1e3:.2f} ms/frame")
        ds = build_dataset(DataConfig(source="lerobot", root=str(root)), None, n_window=8)
        for workers in (0, 2):
            loader = DataLoader(ds, batch_size=16, shuffle=True, num_workers=workers)
            t0, n = time.perf_counter(), 0
            for batch in loader:
                n += len(batch["image"])
            print(f"[data] DataLoader workers={workers} (torch threads {torch.get_num_threads()}): {n / (time.perf_counter() - t0):.0f} samples/s ({n} windows)")
