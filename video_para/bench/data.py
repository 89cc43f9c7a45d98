"""Data pipeline throughput on a synthetic mp4 LeRobot v3 dataset (our writer, libx264).

python -m video_para.bench data [episodes=16] [frames=50] [size=128] [texture=noise|smooth] [n_window=12]
                                [batch=16] [threads=1] [lerobot_python=~/.cache/video_para/lerobot-0.6.1/bin/python]
Prints: write time; per usable video backend, decode ms/frame for random single frames and for whole
episodes; windows/s through a DataLoader (0 and 2 workers) with frames decoded into memory up front
vs lazily per item, one epoch each (worker start-up included); and, when the LeRobot venv of
`make test-compat` exists, LeRobot's own LeRobotDataset on the same files (same batch, one frame and
an n_window action chunk per item). Synthetic episodes: a dot at the EE over per-pixel noise (the codec's
worst case: decoding dominates) or a smooth gradient (closer to camera images: cheap frames).
`threads`: torch intra-op threads of the main process (and of LeRobot's): with 2 on a busy 2-core machine
the DataLoader's own collate in the main process (workers=0) takes ~100 ms per batch.
"""
from __future__ import annotations

import itertools
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..config import exit_if_help
from ..data.lerobot import LeRobotSource, write_dataset
from ..data.video import BACKENDS, backend_status, open_video
from ..data.windows import WindowDataset
from ..episodes import CameraTrack, Episode
from ..geometry import Camera

LEROBOT_SIDE = Path(__file__).resolve().parents[2] / "tools/compat/lerobot_side.py"


def synthetic_episode(index: int, T: int, size: int, texture: str = "noise") -> Episode:
    rng = np.random.default_rng(index)
    K = np.array([[size, 0, size / 2], [0, size, size / 2], [0, 0, 1.0]])
    cam = Camera.look_at([0.0, -0.8, 0.9], [0.0, 0.0, 0.0], K, width=size, height=size)
    ee = np.c_[np.linspace(-0.1, 0.1, T), rng.uniform(-0.05, 0.05, T), np.linspace(0.3, 0.1, T)]
    vv, uu = np.mgrid[0:size, 0:size] + 0.5
    if texture == "noise":
        images = rng.integers(0, 80, (1, size, size, 3), dtype=np.uint8).repeat(T, 0)
    else:
        smooth = np.stack([uu * 80 / size, vv * 80 / size, np.full_like(uu, 40)], -1).astype(np.uint8)
        images = smooth[None].repeat(T, 0)
    for t in range(T):
        u, v = cam.project(ee[t])
        images[t][(uu - u) ** 2 + (vv - v) ** 2 < (size / 20) ** 2] = (255, 140, 0)
    track = CameraTrack(images, np.repeat(cam.K[None], T, 0), np.repeat(cam.world_from_cam[None], T, 0))
    return Episode(index, "reach", 10.0, np.arange(T) / 10.0, ee, np.zeros(T), np.c_[ee, np.zeros(T)], 0.0,
                   {"front": track})


def decode_times(mp4: Path, n_frames: int) -> None:
    rng = np.random.default_rng(0)
    for backend in BACKENDS:
        if backend_status()[backend]:
            print(f"[data] decode {backend}: not usable ({backend_status()[backend]})")
            continue
        reader = open_video(mp4, backend)
        t0 = time.perf_counter()
        idx = rng.integers(0, n_frames, 100)
        for i in idx:
            reader.frames([i])
        rand = (time.perf_counter() - t0) / len(idx) * 1e3
        t0 = time.perf_counter()
        reader.frames(np.arange(n_frames))
        seq = (time.perf_counter() - t0) / n_frames * 1e3
        print(f"[data] decode {backend}: {rand:.2f} ms/frame random single frames, {seq:.2f} ms/frame whole file")


def loader_rate(ds, workers: int, batch: int) -> float:
    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers)
    t0, n = time.perf_counter(), 0
    for b in loader:
        n += len(b["image"])
    return n / (time.perf_counter() - t0)


def main(argv: list[str]) -> None:
    exit_if_help(argv, "python -m video_para.bench data [key=value ...]", __doc__)
    args = dict(a.split("=", 1) for a in argv)
    n_ep, T, size = int(args.get("episodes", 16)), int(args.get("frames", 50)), int(args.get("size", 128))
    n_window, batch, threads = int(args.get("n_window", 12)), int(args.get("batch", 16)), int(args.get("threads", 1))
    torch.set_num_threads(threads)
    lerobot_py = Path(args.get("lerobot_python", Path.home() / ".cache/video_para/lerobot-0.6.1/bin/python"))
    print(f"[data] {n_ep} episodes x {T} frames, {size}x{size} {args.get('texture', 'noise')}, "
          f"torch threads {torch.get_num_threads()}")
    eps = [synthetic_episode(i, T, size, args.get("texture", "noise")) for i in range(n_ep)]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        root = write_dataset(eps, f"{tmp}/ds")
        print(f"[data] write (libx264): {time.perf_counter() - t0:.2f} s")
        decode_times(root / "videos/observation.images.front/chunk-000/file-000.mp4", n_ep * T)
        src = LeRobotSource(root)
        for decode in ("memory", "lazy"):
            t0 = time.perf_counter()
            ds = WindowDataset([src.load_episode(i, lazy=decode == "lazy") for i in range(n_ep)], n_window)
            built = time.perf_counter() - t0
            rates = {w: loader_rate(ds, w, batch) for w in (0, 2)}
            print(f"[data] ours {decode} ({src.backend}): built in {built:.2f} s, " + ", ".join(
                f"workers={w}: {r:.0f} windows/s" for w, r in rates.items()) + f" ({len(ds)} windows, batch {batch})")
        if lerobot_py.exists():
            for backend, workers in itertools.product(("pyav", "torchcodec"), (0, 2)):   # a process each
                subprocess.run([str(lerobot_py), str(LEROBOT_SIDE), "bench", str(root), str(n_window), str(batch),
                                str(threads), backend, str(workers)], check=False)
        else:
            print(f"[data] LeRobot comparison skipped: no {lerobot_py} (run `make test-compat` once)")
