"""Bad inputs at every public boundary: each is an error (or a warning, for a dropped window) whose
message names the culprit — the file, episode, frame, feature or field — never a silent wrong result."""
import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from video_para.config import load_config
from video_para.data.config import DataConfig
from video_para.data.lerobot import LeRobotSource, write_dataset
from video_para.data.sources import build_dataset
from video_para.data.windows import WindowDataset
from video_para.episodes import CameraTrack, Episode, EpisodeError
from video_para.experiment import ExperimentConfig
from video_para.geometry import Camera
from video_para.models import Policy, PolicyConfig, Stats
from video_para.models.backbones.tiny import TinyBackboneConfig
from video_para.models.heads.para import ParaHeadConfig

H, W = 48, 64
K = np.array([[60.0, 0, W / 2], [0, 60.0, H / 2], [0, 0, 1]])
CAM = Camera.look_at([0.0, -0.8, 0.9], [0.0, 0.0, 0.0], K, width=W, height=H)
STATS = Stats(0.0, 0.3, 0.0, 1.0, [0.0, 0.0, 0.1], [0.2, 0.2, 0.1], 0.5, 0.5)
VIDEO = "videos/observation.images.front/chunk-000/file-000.mp4"


def episode(index: int, T: int = 6) -> Episode:
    ee = np.c_[np.linspace(-0.1, 0.1, T), np.zeros(T), np.linspace(0.3, 0.1, T)]
    track = CameraTrack(np.full((T, H, W, 3), 40, np.uint8), np.repeat(K[None], T, 0),
                        np.repeat(CAM.world_from_cam[None], T, 0))
    return Episode(index=index, task="t", fps=10.0, timestamps=np.arange(T) / 10.0, ee_pos=ee,
                   gripper=np.linspace(0, 1, T), action=np.c_[ee, np.linspace(0, 1, T)], support_z=0.0,
                   cameras={"front": track})


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return write_dataset([episode(i, 5 + i) for i in range(3)], tmp_path_factory.mktemp("ds") / "clean")


@pytest.fixture
def ds(clean, tmp_path):
    """A fresh copy of the clean dataset to damage."""
    return shutil.copytree(clean, tmp_path / "ds")


# -- Policy.predict ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def policy():
    torch.manual_seed(0)
    cfg = PolicyConfig(backbone=TinyBackboneConfig(channels=8, n_down=1, n_blocks=1),
                       head=ParaHeadConfig(hidden_channels=8, n_height_bins=4, n_gripper_bins=2), n_window=3,
                       image_height=H, image_width=W)
    return Policy(cfg, STATS)


EE = np.array([0.0, 0.0, 0.2])
OK = np.zeros((H, W, 3), np.uint8)


@pytest.mark.parametrize("image, camera, ee, match", [
    (OK.astype(np.float32) + 200, CAM, EE, r"float image values span \[200, 200\]; float images must be in \[0, 1\]"),
    (OK.astype(np.int64), CAM, EE, r"image dtype torch.int64 is not supported"),
    (OK.astype(np.uint16), CAM, EE, r"image dtype torch.uint16 is not supported"),
    (np.full((H, W, 3), np.nan, np.float32), CAM, EE, rf"image has {H * W * 3} NaN/Inf values"),
    (OK[:32, :32], CAM, EE, r"image is 32x32 but its camera is calibrated for 64x48"),
    (OK[:32, :32], CAM.scaled(0.5, 32 / 48, 32, 32), EE, r"image is 32x32 but the policy takes 64x48 images"),
    (OK[..., 0], CAM, EE, r"image must be one \(H, W, 3\) RGB frame, got shape \(48, 64\)"),
    (OK, CAM, np.array([np.nan, 0, 0.2]), r"ee_pos must be 3 finite world coordinates"),
    (OK, CAM, EE[:2], r"ee_pos must be 3 finite world coordinates.*\[0.0, 0.0\]"),
], ids=["float_0_255", "int64", "uint16", "nan_image", "size_vs_camera", "size_vs_policy", "grayscale",
        "nan_ee", "ee_2_values"])
def test_predict_rejects_bad_observations(policy, image, camera, ee, match):
    with pytest.raises(ValueError, match=match):
        policy.predict(image, camera, ee)


# -- Camera and lift ---------------------------------------------------------------------------
def rigid(**change):
    T = CAM.world_from_cam @ np.diag(change.get("diag", [1, 1, 1, 1]))
    for (i, j), v in change.get("at", {}).items():
        T[i, j] = v
    return T


@pytest.mark.parametrize("K_, T_, match", [
    (np.where(np.eye(3) == 1, np.nan, K), CAM.world_from_cam, r"Camera K has 3 NaN/Inf entries"),
    (np.array([60.0, 60.0, 32, 24]), CAM.world_from_cam, r"Camera K must be \(3, 3\).*got shape \(4,\)"),
    (K * [[-1], [1], [1]], CAM.world_from_cam, r"Camera K must be \[\[fx, s, cx\].*fx, fy > 0"),
    (K, rigid(at={(0, 3): np.inf}), r"Camera world_from_cam has 1 NaN/Inf entries"),
    (K, rigid(at={(3, 0): 0.5}), r"world_from_cam bottom row must be \[0, 0, 0, 1\], got \[0.5, 0.0, 0.0, 1.0\]"),
    (K, rigid(diag=[1, -1, 1, 1]), r"world_from_cam is a reflection \(det R = -1\)"),
    (K, rigid(diag=[2, 1, 1, 1]), r"rotation is not orthonormal"),
    (K, CAM.world_from_cam[:3], r"Camera world_from_cam must be \(4, 4\).*got shape \(3, 4\)"),
], ids=["nan_K", "K_4_values", "negative_fx", "inf_extrinsics", "bottom_row", "reflection", "scaled_rotation",
        "extrinsics_3x4"])
def test_camera_rejects_malformed_calibration(K_, T_, match):
    with pytest.raises(ValueError, match=match):
        Camera.from_dict({"K": K_.tolist(), "world_from_cam": T_.tolist(), "width": W, "height": H})


@pytest.mark.parametrize("pixels, heights, match", [
    (np.array([np.nan, 10.0]), 0.0, r"lift: 1 of the pixels are NaN/Inf"),
    (np.array([30.0, 20.0]), np.nan, r"lift: 1 of the heights are NaN/Inf"),
    (torch.tensor([[np.nan, 1.0], [3.0, 4.0]]), torch.zeros(2), r"lift: 1 of the pixels are NaN/Inf"),
], ids=["nan_pixel", "nan_height", "nan_pixel_torch"])
def test_lift_of_nan_raises(pixels, heights, match):
    cam = CAM.torch() if isinstance(pixels, torch.Tensor) else CAM
    with pytest.raises(ValueError, match=match):
        cam.lift(pixels, heights)


def test_episode_calibration_names_episode_frame_and_camera():
    ep = episode(4)
    ep.cameras["front"].world_from_cam[2] = rigid(diag=[-1, 1, 1, 1])
    with pytest.raises(EpisodeError, match=r"episode 4, frame 2: camera 'front' calibration: .*reflection"):
        ep.validate()


# -- LeRobot datasets --------------------------------------------------------------------------
def edit_info(root, change):
    path = root / "meta/info.json"
    info = json.loads(path.read_text())
    change(info)
    path.write_text(json.dumps(info))


def test_malformed_info_json_names_its_path(ds):
    (ds / "meta/info.json").write_text('{"fps": 10, "features": ')
    with pytest.raises(ValueError, match=r"ds/meta/info.json: malformed LeRobot info.json \(JSONDecodeError"):
        LeRobotSource(ds)


def test_info_json_without_fps_names_the_key(ds):
    edit_info(ds, lambda info: info.pop("fps"))
    with pytest.raises(ValueError, match=r"ds/meta/info.json: malformed LeRobot info.json \(missing key 'fps'\)"):
        LeRobotSource(ds)


@pytest.mark.parametrize("lazy", [False, True], ids=["memory", "lazy"])
def test_frame_size_differing_from_info_json_is_caught_at_load(ds, lazy):
    edit_info(ds, lambda info: info["features"]["observation.images.front"].update(shape=[64, 64, 3]))
    with pytest.raises(EpisodeError, match=r"ds: episode 0, feature 'observation.images.front': .*file-000.mp4: "
                                           r"frames are 64x48, the metadata says 64x64"):
        LeRobotSource(ds).load_episode(0, lazy=lazy)


@pytest.mark.parametrize("lazy", [False, True], ids=["memory", "lazy"])
def test_truncated_video_is_caught_at_load(ds, tmp_path, lazy):
    short = write_dataset([episode(i, 5 + i) for i in range(2)], tmp_path / "short")   # 11 of the 18 frames
    shutil.copy(short / VIDEO, ds / VIDEO)
    source = LeRobotSource(ds)
    source.load_episode(1, lazy=lazy)                      # frames 5..10 are all there
    with pytest.raises(EpisodeError, match=r"ds: episode 2, feature 'observation.images.front': .*file-000.mp4: has "
                                           r"11 frames, frames 11..17 are needed \(truncated\?\)"):
        source.load_episode(2, lazy=lazy)


def test_missing_video_names_episode_and_file(ds):
    (ds / VIDEO).unlink()
    with pytest.raises(EpisodeError, match=r"episode 0, feature 'observation.images.front': .*file-000.mp4: no such"):
        LeRobotSource(ds).load_episode(0, lazy=True)


def rewrite_column(root, name, values):
    path = root / "data/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    table = table.set_column(table.column_names.index(name), name, values)
    pq.write_table(table, path)


def test_calibration_of_the_wrong_width_names_the_feature(ds):
    n = pq.read_table(ds / "data/chunk-000/file-000.parquet").num_rows
    rewrite_column(ds, "observation.cameras.front.K",
                   pa.FixedSizeListArray.from_arrays(pa.array(np.tile([60.0, 60, 32, 24], n)), 4))
    with pytest.raises(EpisodeError, match=r"ds: episode 0, feature 'observation.cameras.front.K': 4 values per "
                                           r"frame, expected 9"):
        LeRobotSource(ds).load_episode(0)


def test_nan_state_names_dataset_episode_frame_and_field(ds):
    table = pq.read_table(ds / "data/chunk-000/file-000.parquet")
    ee = np.asarray(table.column("observation.ee_pos").to_pylist(), np.float32)
    ee[5 + 2, 1] = np.nan                                  # episode 1 starts at row 5
    rewrite_column(ds, "observation.ee_pos", pa.FixedSizeListArray.from_arrays(pa.array(ee.ravel()), 3))
    with pytest.raises(EpisodeError, match=r"ds: episode 1, frame 2: field 'ee_pos' is NaN/Inf"):
        LeRobotSource(ds).load_episode(1)


def test_malformed_episode_meta_json_names_the_feature(ds):
    path = ds / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    i = table.column_names.index("video_para/meta")
    pq.write_table(table.set_column(i, "video_para/meta", pa.array(["{}", "{oops", "{}"])), path)
    with pytest.raises(EpisodeError, match=r"ds: episode 1, feature 'video_para/meta': not valid JSON"):
        LeRobotSource(ds).load_episode(1)


def test_episode_out_of_range_names_dataset_and_range(clean):
    cfg = DataConfig(source="lerobot", root=str(clean), episodes=[5])
    with pytest.raises(IndexError, match=r"clean: no episode 5 \(data.episodes\); the dataset has episodes 0..2"):
        build_dataset(cfg, None, n_window=2)


# -- training windows --------------------------------------------------------------------------
def behind_at_frame_2():
    ep = episode(3)
    ep.ee_pos[2] = [0.0, -1.5, 1.2]                         # behind the camera at y = -0.8
    return ep


def test_behind_camera_in_error_mode_names_episode_and_frame():
    with pytest.raises(ValueError, match=r"episode 3, frame 0: 1 of the EE positions .* behind or outside the "
                                         r"image of camera 'front'"):
        WindowDataset([behind_at_frame_2()], 2, out_of_image="error")


@pytest.mark.parametrize("mode", ["drop", "clip"])
def test_behind_camera_drops_only_those_windows_naming_them(mode):
    with pytest.warns(UserWarning, match=r"3 window\(s\) dropped \(episode 3 frames 0-2\)"):
        ds = WindowDataset([behind_at_frame_2()], 2, out_of_image=mode)
    assert [t for _, t in ds.index] == [3, 4, 5]


def test_off_image_targets_in_drop_mode_name_the_episode():
    ep = episode(7)
    ep.ee_pos[4] = [1.0, 0.0, 0.0]                          # right of the image
    with pytest.warns(UserWarning, match=r"window\(s\) dropped \(episode 7 frames 2-4\)"):
        WindowDataset([ep], 2)


def test_point_track_overlay_of_an_ee_behind_the_camera_names_episode_and_frame():
    from dataclasses import replace

    from video_para.data.sources import with_point_track
    ep = behind_at_frame_2()
    ep.cameras["front"] = replace(ep.cameras["front"], masks=np.zeros((len(ep), H, W), bool))
    with pytest.raises(ValueError, match=r"data.overlay: episode 3, frame 2: the EE is behind camera 'front'"):
        with_point_track(ep, 3.0, (255, 128, 0))


def test_no_usable_window_names_camera_and_episodes():
    ep = episode(9)
    ep.ee_pos[:] = [0.0, -1.5, 1.2]
    with pytest.raises(ValueError, match=r"no window .* camera 'front' \(1 episode\(s\); episode 9 frames 0-5\)"), \
            pytest.warns(UserWarning):
        WindowDataset([ep], 2)


# -- saved policies, LIBERO files, configs -------------------------------------------------------
@pytest.mark.parametrize("name, damage, match", [
    ("model.safetensors", lambda b: b[: len(b) // 2], r"p/model.safetensors: cannot be read \(truncated"),
    ("config.json", lambda b: b[:-5], r"p/config.json: not valid JSON"),
    ("stats.json", lambda b: b"[1, 2", r"p/stats.json: bad statistics"),
], ids=["truncated_weights", "junk_config", "junk_stats"])
def test_damaged_policy_files_name_their_path(policy, tmp_path, name, damage, match):
    path = policy.save_pretrained(tmp_path / "p") / name
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=match):
        Policy.from_pretrained(tmp_path / "p")


def test_junk_libero_hdf5_names_its_path(tmp_path):
    pytest.importorskip("h5py")
    from video_para.data.libero_hdf5 import load_libero_hdf5
    (tmp_path / "demo.hdf5").write_bytes(b"not hdf5 at all" * 10)
    with pytest.raises(EpisodeError, match=r"demo.hdf5: not a readable HDF5 file"):
        load_libero_hdf5(tmp_path / "demo.hdf5", K, np.eye(4))


def test_libero_fields_of_different_lengths_name_path_and_demo(tmp_path):
    h5py = pytest.importorskip("h5py")
    from video_para.data.libero_hdf5 import load_libero_hdf5
    with h5py.File(tmp_path / "demo.hdf5", "w") as f:
        g = f.create_group("data/demo_0")
        g["obs/agentview_rgb"] = np.zeros((5, 16, 16, 3), np.uint8)
        g["obs/ee_pos"] = np.zeros((5, 3))
        g["obs/gripper_states"] = np.zeros((5, 2))
        g["actions"] = np.zeros((4, 7))
    with pytest.raises(EpisodeError, match=r"demo.hdf5: episode 0 \(demo_0\): malformed fields"):
        load_libero_hdf5(tmp_path / "demo.hdf5", K, np.eye(4))


@pytest.mark.parametrize("arg, match", [
    ("train.stepz=5", r"^invalid config: train.stepz: Key 'stepz' not in 'TrainConfig'. Did you mean one of: 'steps'"),
    ("train.steps=abc", r"^invalid config: train.steps: Value 'abc' of type 'str' could not be converted to Integer$"),
    ("experiment=nope", r"^experiment=nope: no .*configs/experiment/nope.yaml; presets: .*tiny_para"),
    ("policy.backbone.type=foo", r"^unknown backbone type 'foo'; choose one of \['dino', 'svd', 'tiny'\]$"),
], ids=["typo", "bad_type", "unknown_preset", "unknown_backbone"])
def test_config_errors_end_with_a_readable_line(arg, match):
    with pytest.raises((ValueError, FileNotFoundError), match=match) as info:
        load_config(ExperimentConfig, [arg])
    assert "object_type" not in str(info.value) and "\n" not in str(info.value)
