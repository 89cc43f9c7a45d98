"""LeRobot v3 write -> read round trip on synthetic episodes (a coloured dot drawn at the projected EE)."""
import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dot_track import dot_track

from video_para.data.lerobot import ROW_ORDER, LeRobotSource, write_dataset
from video_para.data.video import VideoFrames
from video_para.episodes import Episode, EpisodeError
from video_para.geometry import Camera

H, W = 48, 64


def make_episode(index: int, T: int = 6) -> Episode:
    rng = np.random.default_rng(index)
    K = np.array([[60.0, 0, W / 2], [0, 60.0, H / 2], [0, 0, 1]])
    cam = Camera.look_at([0.0, -0.8, 0.9], [0.0, 0.0, 0.0], K, width=W, height=H)
    ee = np.c_[np.linspace(-0.1, 0.1, T), rng.uniform(-0.05, 0.05, T), np.linspace(0.3, 0.1, T)]
    track = dot_track(cam, ee, 40, 3.0, (255, 128, 0))
    return Episode(index=index, task=f"task {index % 2}", fps=10.0, timestamps=np.arange(T) / 10.0, ee_pos=ee,
                   gripper=np.linspace(0, 1, T), action=np.c_[ee, np.linspace(0, 1, T)], support_z=0.02,
                   cameras={"front": track}, meta={"cell": index})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    eps = [make_episode(i, T=5 + i) for i in range(3)]
    return eps, write_dataset(eps, tmp_path_factory.mktemp("ds") / "demo")


def test_v3_layout_and_metadata(dataset):
    eps, root = dataset
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == 3 and info["total_frames"] == 18
    assert info["features"]["observation.images.front"]["shape"] == [H, W, 3]
    assert info["features"]["observation.cameras.front.K"]["shape"] == [9]
    meta = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pydict()
    assert meta["dataset_from_index"] == [0, 5, 11] and meta["dataset_to_index"] == [5, 11, 18]
    assert meta["videos/observation.images.front/from_timestamp"] == [0.0, 0.5, 1.1]
    assert (root / "videos/observation.images.front/chunk-000/file-000.mp4").stat().st_size > 0
    stats = json.loads((root / "meta/stats.json").read_text())["observation.state"]
    state = np.concatenate([np.c_[e.ee_pos, e.gripper] for e in eps]).astype(np.float32)
    assert stats["count"] == [18] and set(stats) == {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}
    np.testing.assert_allclose(stats["q50"], np.median(state, 0), rtol=1e-6)
    np.testing.assert_allclose(stats["q99"], np.percentile(state, 99, axis=0), rtol=1e-6)


def test_round_trip(dataset):
    eps, root = dataset
    src = LeRobotSource(root)
    assert len(src) == 3
    for e in eps:
        got = src.load_episode(e.index)
        assert got.task == e.task and got.meta == e.meta and got.support_z == e.support_z
        np.testing.assert_array_equal(got.ee_pos, e.ee_pos.astype(np.float32))
        np.testing.assert_array_equal(got.action, e.action.astype(np.float32))
        np.testing.assert_array_equal(got.cameras["front"].K, e.cameras["front"].K)      # calibration exact
        np.testing.assert_array_equal(got.cameras["front"].world_from_cam, e.cameras["front"].world_from_cam)
        err = np.abs(got.cameras["front"].images.astype(int) - e.cameras["front"].images.astype(int))
        assert err.mean() < 3 and np.percentile(err, 99) < 40                             # codec tolerance


def test_schema_matches_lerobot(dataset):
    """What LeRobot 0.6.1's reader insists on (found by `make test-compat`): shape-(1,) features are
    scalar columns, tasks.parquet is a pandas frame indexed by the task string."""
    eps, root = dataset
    schema = pq.read_schema(root / "data/chunk-000/file-000.parquet")
    assert str(schema.field("observation.gripper").type) == "float" and str(schema.field("support_z").type) == "double"
    assert str(schema.field("observation.cameras.front.K").type) == "fixed_size_list<element: double>[9]"
    tasks = pd.read_parquet(root / "meta/tasks.parquet")
    assert list(tasks.index) == ["task 0", "task 1"] and tasks.loc["task 1", "task_index"] == 1


@pytest.mark.parametrize("backend", ["pyav", "auto"])
def test_lazy_episode_decodes_the_same_frames(dataset, backend):
    eps, root = dataset
    src = LeRobotSource(root, backend=backend)
    for e in eps:
        lazy, full = src.load_episode(e.index, lazy=True), src.load_episode(e.index)
        frames = lazy.cameras["front"].images
        assert isinstance(frames, VideoFrames) and frames.shape == full.cameras["front"].images.shape
        np.testing.assert_array_equal(frames[[len(e) - 1, 0, 2]], full.cameras["front"].images[[len(e) - 1, 0, 2]])
        np.testing.assert_array_equal(lazy.ee_pos, full.ee_pos)


def test_rows_are_read_in_episode_then_frame_order_across_files(dataset, tmp_path):
    """LeRobotDataset (the one reader of LeRobotSource and so100.convert) orders the frame table by
    ROW_ORDER and episodes by index, whatever the order of the rows and of the parquet files."""
    eps, root = dataset
    shuffled = tmp_path / "shuffled"
    shutil.copytree(root, shuffled)
    path = shuffled / "data/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    table = table.take(pa.array(np.random.default_rng(0).permutation(table.num_rows)))
    path.unlink()
    pq.write_table(table.slice(0, 7), shuffled / "data/chunk-000/file-001.parquet")   # sorts after file-000
    pq.write_table(table.slice(7), path)
    meta = shuffled / "meta/episodes/chunk-000/file-000.parquet"
    pq.write_table(pq.read_table(meta).take(pa.array([2, 0, 1])), meta)
    src = LeRobotSource(shuffled)
    assert ROW_ORDER == ("episode_index", "frame_index")
    assert src.column("index", 0, 18)[:, 0].tolist() == list(range(18))
    assert [m["episode_index"] for m in src.episodes] == [0, 1, 2]
    for e in eps:
        np.testing.assert_array_equal(src.load_episode(e.index).ee_pos, e.ee_pos.astype(np.float32))


def test_truncated_video_names_file_and_episode(dataset, tmp_path):
    eps, _ = dataset
    root = write_dataset(eps, tmp_path / "bad")
    mp4 = root / "videos/observation.images.front/chunk-000/file-000.mp4"
    mp4.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 3])
    for lazy in (False, True):                  # lazy decoding checks the file at load too, not at first decode
        with pytest.raises(EpisodeError, match=r"episode 2, feature 'observation.images.front': .*file-000\.mp4"):
            LeRobotSource(root).load_episode(2, lazy=lazy)


def test_missing_calibration_is_named(dataset, tmp_path):
    eps, _ = dataset
    root = write_dataset(eps, tmp_path / "nocal")
    table = pq.read_table(root / "data/chunk-000/file-000.parquet")
    pq.write_table(table.drop(["observation.cameras.front.K"]), root / "data/chunk-000/file-000.parquet")
    with pytest.raises(EpisodeError, match=r"observation.cameras.front.K'. PARA needs .*so100.calibrate.*so100.convert"):
        LeRobotSource(root)


def test_invalid_episode_is_rejected(tmp_path):
    e = make_episode(7)
    e.gripper[3] = np.nan
    with pytest.raises(EpisodeError, match="episode 7, frame 3: field 'gripper'"):
        write_dataset([e], tmp_path / "x")


def test_build_dataset_from_lerobot_labels_reproject(dataset):
    from video_para.data.config import DataConfig
    from video_para.data.sources import build_dataset
    eps, root = dataset
    ds = build_dataset(DataConfig(source="lerobot", root=str(root), episodes=[1, 2]), None, n_window=3)
    item = ds[0]
    cam = Camera(item["K"].numpy(), item["world_from_cam"].numpy(), W, H)
    np.testing.assert_allclose(cam.project(item["target_xyz"].numpy().astype(np.float64)),
                               item["target_pixels"].numpy(), atol=1e-3)
    np.testing.assert_allclose(item["target_xyz"][0].numpy(), eps[1].ee_pos[1], atol=1e-6)
    with pytest.raises(ValueError, match="data.root"):
        DataConfig(source="lerobot").validate()


def test_repo_id_resolves_in_the_local_lerobot_cache(dataset, tmp_path, monkeypatch):
    import shutil

    from video_para.data.config import DataConfig
    from video_para.data.sources import build_dataset
    eps, root = dataset
    shutil.copytree(root, tmp_path / "me" / "pick")
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path))
    ds = build_dataset(DataConfig(source="lerobot", repo_id="me/pick"), None, n_window=3)
    assert len(ds.episodes) == len(eps)
    monkeypatch.delenv("HF_LEROBOT_HOME")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))                 # LeRobot's default: $HF_HOME/lerobot
    with pytest.raises(FileNotFoundError, match=r"data.repo_id=me/pick: no LeRobot dataset at .*hf/lerobot/me/pick"):
        build_dataset(DataConfig(source="lerobot", repo_id="me/pick"), None, n_window=3)
    with pytest.raises(ValueError, match="one of data.root .* or data.repo_id"):
        DataConfig(source="lerobot", root=str(root), repo_id="me/pick").validate()


def test_data_configs_load_and_lerobot_local_trains_at_the_policy_size(dataset):
    from pathlib import Path

    from video_para.config import load_config
    from video_para.data.sources import build_dataset
    from video_para.experiment import ExperimentConfig
    eps, root = dataset
    names = sorted(p.stem for p in (Path(__file__).parents[1] / "configs/data").glob("*.yaml"))
    assert {"sim_left_right", "lerobot_local"} <= set(names)
    for name in names:
        load_config(ExperimentConfig, [f"data=@data/{name}", f"data.root={root}"]).data.validate()
    cfg = load_config(ExperimentConfig, ["data=@data/lerobot_local", f"data.root={root}"]).data
    ds = build_dataset(cfg, None, n_window=3)
    assert isinstance(ds.episodes[0].cameras["front"].images, VideoFrames)          # decode: lazy
    item = ds[4, 0]
    assert item["image"].shape == (3, 128, 128)                                      # 64x48 recorded
    cam = Camera(item["K"].numpy(), item["world_from_cam"].numpy(), 128, 128)
    np.testing.assert_allclose(cam.project(item["target_xyz"].numpy().astype(np.float64)),
                               item["target_pixels"].numpy(), atol=1e-3)
