"""`make test-compat` (our venv): LeRobot v3 datasets both ways between video_para and LeRobot itself.

1. ours -> LeRobot: write_dataset(), then LeRobotDataset(video_backend="pyav", delta_timestamps) in the
   LeRobot venv; frames (codec tolerance), calibration features and shifted actions must match.
2. LeRobot -> ours: LeRobotDataset.create/add_frame/save_episode/finalize (AV1 video) from the same
   episodes, then our LeRobotSource (memory and lazy) must give the same numbers and frames.
Exits non-zero on the first mismatch; prints timings.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from video_para.bench.data import synthetic_episode
from video_para.data.lerobot import LeRobotSource, write_dataset

HERE = Path(__file__).parent


def frames_match(got: np.ndarray, ref: np.ndarray, source: np.ndarray, what: str) -> str:
    """got and ref: the same file decoded by two readers (decoder tolerance); source: what was encoded
    by a lossy codec (LeRobot: AV1 crf 30), so only frame identity is checked against it: each decoded
    frame must be closer to its own source frame than to any other."""
    err = np.abs(got.astype(int) - ref.astype(int))
    if err.mean() > 1 or err.max() > 8:
        raise AssertionError(f"{what}: readers disagree (mean |err| {err.mean():.2f}, max {err.max()})")
    dist = np.abs(got[:, None].astype(np.int16) - source[None].astype(np.int16)).mean(axis=(2, 3, 4))
    wrong = np.flatnonzero(dist.argmin(1) != np.arange(len(got)))
    if wrong.size:
        raise AssertionError(f"{what}: decoded frame(s) {wrong.tolist()} are closest to another source frame")
    return f"readers agree to mean |err| {err.mean():.2f} (max {err.max()}), every frame identified"


def lerobot(py: str, *args) -> None:
    t0 = time.perf_counter()
    subprocess.run([py, str(HERE / "lerobot_side.py"), *map(str, args)], check=True)
    print(f"[compat]   ({args[0]} in the LeRobot venv: {time.perf_counter() - t0:.1f} s incl. import)")


def ours_to_lerobot(py: str, eps, tmp: Path) -> None:
    root = write_dataset(eps, tmp / "ours")
    lerobot(py, "read", root, tmp / "read.npz")
    got = np.load(tmp / "read.npz")
    n = sum(len(e) for e in eps)
    assert (int(got["num_episodes"]), int(got["num_frames"])) == (len(eps), n), "episode/frame counts"
    cat = lambda f: np.concatenate([f(e) for e in eps])   # noqa: E731
    K, w2c = cat(lambda e: e.cameras["front"].K), cat(lambda e: e.cameras["front"].world_from_cam)
    np.testing.assert_allclose(got["observation.cameras.front.K"].reshape(n, 3, 3), K, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["observation.cameras.front.world_from_cam"].reshape(n, 4, 4), w2c, atol=1e-12)
    # delta_timestamps: action at t, t+1, t+2 (clamped and padded at the episode end)
    want = cat(lambda e: e.action[np.minimum(np.arange(len(e))[:, None] + [0, 1, 2], len(e) - 1)])
    np.testing.assert_allclose(got["action"], want.astype(np.float32), atol=0)
    pad = cat(lambda e: np.arange(len(e))[:, None] + [0, 1, 2] >= len(e))
    assert np.array_equal(got["action_is_pad"], pad), "action_is_pad"
    src = LeRobotSource(root)
    ours = np.concatenate([np.asarray(src.load_episode(i).cameras["front"].images) for i in range(len(eps))])
    imgs = cat(lambda e: e.cameras["front"].images)
    cur = frames_match(got["observation.images.front"][:, 1], ours, imgs, "frame t")
    prev = cat(lambda e: np.maximum(np.arange(len(e)) - 1, 0) + sum(len(x) for x in eps[:eps.index(e)]))
    np.testing.assert_array_equal(got["observation.images.front"][:, 0], got["observation.images.front"][prev, 1],
                                  err_msg="frame t-1 (delta_timestamps, clamped at the episode start)")
    assert list(got["task"]) == list(cat(lambda e: [e.task] * len(e))), "task strings"
    print(f"[compat] ours -> LeRobot: OK ({len(eps)} episodes, {n} frames; calibration exact (float64), "
          f"actions + pads exact, frames {cur})")


def lerobot_to_ours(py: str, eps, tmp: Path) -> None:
    cat = lambda f: np.concatenate([f(e) for e in eps])   # noqa: E731
    np.savez(tmp / "spec.npz", camera="front", fps=eps[0].fps, episode=cat(lambda e: np.full(len(e), e.index)),
             images=cat(lambda e: e.cameras["front"].images), ee_pos=cat(lambda e: e.ee_pos),
             gripper=cat(lambda e: e.gripper), action=cat(lambda e: e.action),
             support_z=cat(lambda e: np.full(len(e), e.support_z)), K=cat(lambda e: e.cameras["front"].K),
             world_from_cam=cat(lambda e: e.cameras["front"].world_from_cam), task=cat(lambda e: [e.task] * len(e)))
    lerobot(py, "write", tmp / "theirs", tmp / "spec.npz")
    src = LeRobotSource(tmp / "theirs")
    assert len(src) == len(eps), f"{len(src)} episodes read, {len(eps)} written"
    codec = src.info["features"]["observation.images.front"]["info"]["video.codec"]
    for lazy in (False, True):
        ref = LeRobotSource(tmp / "theirs", backend="pyav")
        for e in eps:
            got = src.load_episode(e.index, lazy=lazy)
            assert got.task == e.task and got.support_z == e.support_z
            np.testing.assert_array_equal(got.ee_pos, e.ee_pos.astype(np.float32))
            np.testing.assert_array_equal(got.action, e.action.astype(np.float32))
            np.testing.assert_array_equal(got.cameras["front"].K, e.cameras["front"].K)
            np.testing.assert_array_equal(got.cameras["front"].world_from_cam, e.cameras["front"].world_from_cam)
            err = frames_match(np.asarray(got.cameras["front"].images),
                               np.asarray(ref.load_episode(e.index).cameras["front"].images),
                               e.cameras["front"].images, f"episode {e.index}")
    print(f"[compat] LeRobot -> ours: OK ({len(eps)} episodes, {codec} video; numbers + calibration exact, "
          f"memory and lazy ({src.backend} decoder vs pyav); last episode: {err})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lerobot-python", required=True)
    ap.add_argument("--keep", help="write the datasets here instead of a temporary directory")
    args = ap.parse_args()
    eps = [synthetic_episode(i, T=12 + 3 * i, size=64) for i in range(3)]
    for e in eps:                          # frames a lossy codec keeps apart: grey level and bar width per frame
        e.task = f"reach {e.index % 2}"
        imgs = e.cameras["front"].images
        imgs[:] = (40 + 9 * np.arange(len(e)) + 30 * e.index)[:, None, None, None].astype(np.uint8)
        for t in range(len(e)):
            imgs[t, :, : 3 * t] = 255
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(args.keep or tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        ours_to_lerobot(args.lerobot_python, eps, tmp)
        lerobot_to_ours(args.lerobot_python, eps, tmp)
        print(f"[compat] PASS in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
