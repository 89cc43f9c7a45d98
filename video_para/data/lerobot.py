"""LeRobot v3.0 datasets written and read with pyarrow + PyAV (lerobot itself cannot share our torch pin).
`make test-compat` round-trips both ways through lerobot 0.6.1 itself (tools/compat/).

Layout (LeRobot v3.0): meta/info.json, meta/stats.json, meta/tasks.parquet,
meta/episodes/chunk-000/file-000.parquet, data/chunk-000/file-000.parquet and one
videos/observation.images.<cam>/chunk-000/file-000.mp4 per camera with all episodes concatenated
(each episode's span is videos/<key>/from_timestamp..to_timestamp). The reader follows the per-episode
chunk/file indices and timestamps and sorts frames by (episode_index, frame_index), so datasets LeRobot
wrote (AV1, several files) read too.
Calibration is a per-frame feature: observation.cameras.<cam>.K (9, row-major) and
.world_from_cam (16, row-major), float64 so that projections survive the round trip exactly.
Shape-(1,) features are plain scalar columns, as LeRobot's hf `datasets` schema expects.
Video codec: libx264 yuv420p (PyAV's bundled FFmpeg encodes it; LeRobot's torchcodec/pyav decode it).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..episodes import CameraTrack, Episode, EpisodeError
from .video import VideoError, VideoFrames, resolve_backend

CHUNK = "chunk-000/file-000"
ROW_ORDER = ("episode_index", "frame_index")       # the frame table's row order, whatever the files' order
STATS_QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)   # the q01 ... q99 entries LeRobot's stats.json carries


def _img_key(cam: str) -> str:
    return f"observation.images.{cam}"


def _numeric(episodes: list[Episode]) -> dict[str, tuple[str, list[str] | None, np.ndarray]]:
    """feature name -> (dtype, names, (N, d) values) for every per-frame numeric column."""
    cat = lambda f: np.concatenate([np.asarray(f(e), dtype=np.float64).reshape(len(e), -1) for e in episodes])
    cols = {
        "observation.state": ("float32", ["x", "y", "z", "gripper"],
                              cat(lambda e: np.c_[e.ee_pos, e.gripper])),
        "observation.ee_pos": ("float32", ["x", "y", "z"], cat(lambda e: e.ee_pos)),
        "observation.gripper": ("float32", ["gripper"], cat(lambda e: e.gripper)),
        "action": ("float32", ["x", "y", "z", "gripper"], cat(lambda e: e.action)),
        "support_z": ("float64", ["z"], cat(lambda e: np.full(len(e), e.support_z))),
    }
    for cam in episodes[0].cameras:
        cols[f"observation.cameras.{cam}.K"] = ("float64", None, cat(lambda e: e.cameras[cam].K))
        cols[f"observation.cameras.{cam}.world_from_cam"] = ("float64", None,
                                                            cat(lambda e: e.cameras[cam].world_from_cam))
    return cols


def _encode(path: Path, frames: list[np.ndarray], fps: float, codec: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    H, W = frames[0].shape[1:3]
    if H % 2 or W % 2:
        raise ValueError(f"{path}: yuv420p video needs even image sizes, got {W}x{H}")
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=int(round(fps)))
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        if codec == "libx264":
            s.options = {"crf": "10", "g": "2"}     # near-lossless, short GOP for cheap random access
        for chunk in frames:
            for img in chunk:
                out.mux(s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")))
        out.mux(s.encode())


def write_dataset(episodes: list[Episode], root, fps: float | None = None, robot_type: str = "video_para_sim",
                  codec: str = "libx264") -> Path:
    """Write `episodes` (all with the same cameras and image sizes) as a LeRobot v3.0 dataset at `root`."""
    if not episodes:
        raise ValueError("write_dataset: no episodes")
    for e in episodes:
        e.validate()
    root = Path(root)
    fps = float(fps or episodes[0].fps)
    cams = list(episodes[0].cameras)
    for e in episodes:
        if list(e.cameras) != cams:
            raise EpisodeError(f"episode {e.index}: cameras {list(e.cameras)} differ from {cams}")
    tasks = list(dict.fromkeys(e.task for e in episodes))
    lengths = np.array([len(e) for e in episodes])
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    n = int(lengths.sum())
    cols = _numeric(episodes)

    table = {"index": np.arange(n), "episode_index": np.repeat(np.arange(len(episodes)), lengths),
             "frame_index": np.concatenate([np.arange(L) for L in lengths]),
             "timestamp": np.concatenate([np.arange(L) / fps for L in lengths]).astype(np.float32),
             "task_index": np.repeat([tasks.index(e.task) for e in episodes], lengths)}
    arrays = {k: pa.array(v) for k, v in table.items()}
    for k, (dt, _, v) in cols.items():
        d = v.shape[1]
        flat = pa.array(v.astype(dt).ravel())
        arrays[k] = flat if d == 1 else pa.FixedSizeListArray.from_arrays(flat, d)
    (root / "data/chunk-000").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(arrays), root / f"data/{CHUNK}.parquet")

    features = {k: {"dtype": "int64", "shape": [1], "names": None}
                for k in ("index", "episode_index", "frame_index", "task_index")}
    features["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
    for k, (dt, names, v) in cols.items():
        features[k] = {"dtype": dt, "shape": [v.shape[1]], "names": names}
    ep_meta = {"episode_index": np.arange(len(episodes)), "tasks": [[e.task] for e in episodes],
               "length": lengths, "dataset_from_index": starts, "dataset_to_index": starts + lengths,
               "data/chunk_index": np.zeros(len(episodes), int), "data/file_index": np.zeros(len(episodes), int),
               "meta/episodes/chunk_index": np.zeros(len(episodes), int),
               "meta/episodes/file_index": np.zeros(len(episodes), int),
               "video_para/source_index": [e.index for e in episodes],
               "video_para/meta": [json.dumps(e.meta) for e in episodes]}
    for cam in cams:
        key = _img_key(cam)
        H, W = episodes[0].cameras[cam].images.shape[1:3]
        features[key] = {"dtype": "video", "shape": [H, W, 3], "names": ["height", "width", "channels"],
                         "info": {"video.height": H, "video.width": W, "video.codec": "h264",
                                  "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": fps,
                                  "video.channels": 3, "has_audio": False}}
        _encode(root / f"videos/{key}/{CHUNK}.mp4", [e.cameras[cam].images for e in episodes], fps, codec)
        ep_meta[f"videos/{key}/chunk_index"] = np.zeros(len(episodes), int)
        ep_meta[f"videos/{key}/file_index"] = np.zeros(len(episodes), int)
        ep_meta[f"videos/{key}/from_timestamp"] = starts / fps
        ep_meta[f"videos/{key}/to_timestamp"] = (starts + lengths) / fps
    (root / "meta/episodes/chunk-000").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({k: pa.array(list(v)) for k, v in ep_meta.items()}),
                   root / f"meta/episodes/{CHUNK}.parquet")
    # LeRobot reads tasks.parquet with pandas: a frame indexed by the task string
    pd.DataFrame({"task_index": range(len(tasks))}, index=pd.Index(tasks, name="task")).to_parquet(
        root / "meta/tasks.parquet")
    stats = {k: {"min": v.min(0).tolist(), "max": v.max(0).tolist(), "mean": v.mean(0).tolist(),
                 "std": v.std(0).tolist(), "count": [n],
                 **{f"q{round(q * 100):02d}": np.quantile(v, q, axis=0).tolist() for q in STATS_QUANTILES}}
             for k, (_, _, v) in cols.items()}
    (root / "meta/stats.json").write_text(json.dumps(stats, indent=2))
    info = {"codebase_version": "v3.0", "robot_type": robot_type, "total_episodes": len(episodes),
            "total_frames": n, "total_tasks": len(tasks), "chunks_size": 1000, "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 500, "fps": int(fps) if fps.is_integer() else fps,
            "splits": {"train": f"0:{len(episodes)}"},
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
            "features": features}
    (root / "meta/info.json").write_text(json.dumps(info, indent=2))
    return root


def dataset_root(root: str = "", repo_id: str = "") -> Path:
    """`root`, or where LeRobotDataset keeps `repo_id` offline: $HF_LEROBOT_HOME/<repo_id> (LeRobot's
    default: $HF_HOME/lerobot, i.e. ~/.cache/huggingface/lerobot)."""
    if root:
        return Path(root)
    home = os.environ.get("HF_LEROBOT_HOME") or Path(os.environ.get("HF_HOME", "~/.cache/huggingface")) / "lerobot"
    path = Path(home).expanduser() / repo_id
    if not (path / "meta/info.json").exists():
        raise FileNotFoundError(f"data.repo_id={repo_id}: no LeRobot dataset at {path} (offline: the local LeRobot "
                                "cache, $HF_LEROBOT_HOME or ~/.cache/huggingface/lerobot). Download it there first, e.g. "
                                f"`huggingface-cli download --repo-type dataset {repo_id} --local-dir {path}`, "
                                "or give data.root=DIR")
    return path


class LeRobotDataset:
    """The files of a LeRobot v3.0 dataset, read once for every reader here (LeRobotSource, so100.convert):
    info.json, the frame table in ROW_ORDER, the episode table by episode_index, and each episode's
    feature rows and video frames (located by its chunk/file indices and from_timestamp)."""

    def __init__(self, root, backend: str = "auto"):
        self.root, self.backend = Path(root), resolve_backend(backend)
        info_path = self.root / "meta/info.json"
        if not info_path.exists():
            raise FileNotFoundError(f"{info_path}: not a LeRobot v3 dataset")
        try:
            self.info = json.loads(info_path.read_text())
            self.fps = float(self.info["fps"])
            self.cameras = [k.removeprefix("observation.images.") for k, f in self.info["features"].items()
                            if f["dtype"] == "video"]
            self.video_path = str(self.info["video_path"])
        except KeyError as exc:
            raise ValueError(f"{info_path}: malformed LeRobot info.json (missing key {exc})") from None
        except (ValueError, TypeError, AttributeError) as exc:      # json.JSONDecodeError is a ValueError
            raise ValueError(f"{info_path}: malformed LeRobot info.json ({type(exc).__name__}: {exc})") from None
        self.data = _read_all(self.root / "data").sort_by([(k, "ascending") for k in ROW_ORDER])
        self.episodes = _read_all(self.root / "meta/episodes").sort_by("episode_index").to_pylist()

    def __len__(self) -> int:
        return len(self.episodes)

    def _where(self, i: int, feature: str) -> str:
        return f"{self.root}: episode {i}, feature '{feature}'"

    def column(self, name: str, lo: int, hi: int) -> np.ndarray:
        """Rows lo..hi-1 of a numeric feature as (hi - lo, d) float64."""
        if name not in self.data.column_names:
            raise KeyError(f"{self.root}: no feature '{name}'")
        return np.asarray(self.data.column(name).slice(lo, hi - lo).to_pylist(), dtype=np.float64).reshape(hi - lo, -1)

    def feature(self, i: int, name: str, shape: tuple = ()) -> np.ndarray:
        """Episode i's rows of a numeric feature as (T, *shape); a wrong width names dataset, episode, feature."""
        m = self.episodes[i]
        lo, hi = m["dataset_from_index"], m["dataset_to_index"]
        try:
            values = self.column(name, lo, hi)
        except (ValueError, TypeError) as exc:             # ragged or non-numeric cells
            raise EpisodeError(f"{self._where(i, name)}: not numeric per-frame values ({exc})") from None
        if shape and values.shape[1] != np.prod(shape):
            raise EpisodeError(f"{self._where(i, name)}: {values.shape[1]} values per frame, expected "
                               f"{int(np.prod(shape))} (shape {shape})")
        return values.reshape(hi - lo, *shape) if shape else values

    def frames(self, cam: str, i: int) -> VideoFrames:
        """Episode i's frames of camera `cam` (lazy), located by its chunk/file index and from_timestamp;
        the file's frame count and size are checked against the metadata here (also for lazy decoding)."""
        m, key = self.episodes[i], _img_key(cam)
        try:
            path = self.root / self.video_path.format(
                video_key=key, chunk_index=m[f"videos/{key}/chunk_index"], file_index=m[f"videos/{key}/file_index"])
            first = int(round(m[f"videos/{key}/from_timestamp"] * self.fps))
            H, W = self.info["features"][key]["shape"][:2]
        except (KeyError, ValueError, TypeError) as exc:
            raise EpisodeError(f"{self._where(i, key)}: malformed video metadata ({type(exc).__name__}: {exc})") from None
        try:
            return VideoFrames(path, first, first + m["length"], H, W, self.backend, where=self._where(i, key)).verify()
        except VideoError as exc:
            raise EpisodeError(f"{self._where(i, key)}: {exc}") from exc

    def span(self, i: int) -> tuple[int, int]:
        """Episode i's rows lo..hi-1 of the frame table, checked against their `index` column."""
        if not 0 <= i < len(self):
            raise IndexError(f"{self.root}: no episode {i} (data.episodes); the dataset has episodes 0..{len(self) - 1}")
        lo, hi = self.episodes[i]["dataset_from_index"], self.episodes[i]["dataset_to_index"]
        if not np.array_equal(self.column("index", lo, hi)[:, 0], np.arange(lo, hi)):
            raise EpisodeError(f"episode {i}: rows {lo}..{hi} of {self.root / 'data'} are not its frames")
        return lo, hi


class LeRobotSource(LeRobotDataset):
    """Offline reader of a LeRobot v3.0 dataset with our calibration features (ours or LeRobot-written).

    load_episode(i, lazy=True) keeps every camera's frames as a VideoFrames that decodes on indexing
    (only the frames a training window needs); numbers always come from the parquet files."""

    def __init__(self, root, backend: str = "auto"):
        super().__init__(root, backend)
        for cam in self.cameras:
            for part in ("K", "world_from_cam"):
                if f"observation.cameras.{cam}.{part}" not in self.data.column_names:
                    raise EpisodeError(f"{self.root}: camera '{cam}' has no calibration feature "
                                   f"'observation.cameras.{cam}.{part}'. PARA needs K and world_from_cam on every "
                                   "frame: calibrate the camera (python -m video_para.so100.calibrate) and convert the "
                                   "recording (python -m video_para.so100.convert --dataset DIR --calibration "
                                   "camera.json --out NEW_DIR), then train on NEW_DIR")

    def load_episode(self, i: int, lazy: bool = False) -> Episode:
        lo, hi = self.span(i)
        m, cams = self.episodes[i], {}
        for c in self.cameras:
            images = self.frames(c, i)
            try:
                images = images if lazy else np.asarray(images)
            except VideoError as exc:                      # the message names the dataset, episode and file
                raise EpisodeError(str(exc)) from exc
            cams[c] = CameraTrack(images, self.feature(i, f"observation.cameras.{c}.K", (3, 3)),
                                  self.feature(i, f"observation.cameras.{c}.world_from_cam", (4, 4)))
        try:
            meta = json.loads(m.get("video_para/meta", "{}"))
        except ValueError as exc:
            raise EpisodeError(f"{self._where(i, 'video_para/meta')}: not valid JSON ({exc})") from None
        episode = Episode(index=m.get("video_para/source_index", m["episode_index"]), task=m["tasks"][0], fps=self.fps,
                          timestamps=np.arange(hi - lo) / self.fps, ee_pos=self.feature(i, "observation.ee_pos", (3,)),
                          gripper=self.feature(i, "observation.gripper", (1,))[:, 0], action=self.feature(i, "action", (4,)),
                          support_z=float(self.feature(i, "support_z", (1,))[0, 0]), cameras=cams, meta=meta)
        try:
            return episode.validate()
        except EpisodeError as exc:
            raise EpisodeError(f"{self.root}: {exc}") from None


def _read_all(folder: Path) -> pa.Table:
    """All chunk-*/file-*.parquet under `folder` as one table (LeRobotDataset puts the rows in order)."""
    files = sorted(folder.glob("chunk-*/file-*.parquet"))
    if not files:
        raise FileNotFoundError(f"{folder}: no chunk-*/file-*.parquet (not a LeRobot v3 dataset)")
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
