import numpy as np
import pytest

h5py = pytest.importorskip("h5py")
from video_para.data.libero_hdf5 import load_libero_hdf5  # noqa: E402
from video_para.episodes import EpisodeError  # noqa: E402

K = np.array([[50.0, 0, 8], [0, 50.0, 8], [0, 0, 1]])


def write_demo(path, T=5, drop=None):
    with h5py.File(path, "w") as f:
        for d in range(2):
            g = f.create_group(f"data/demo_{d}")
            img = np.zeros((T, 16, 16, 3), np.uint8)
            img[:, 0, :, 0] = 255                                     # red top row in storage = bottom row
            g["obs/agentview_rgb"] = img
            g["obs/ee_pos"] = np.c_[np.arange(T) * 0.1 + d, np.zeros(T), np.ones(T)]
            g["obs/gripper_states"] = np.tile([[0.04, -0.04]], (T, 1)) * np.linspace(1, 0, T)[:, None]
            g["actions"] = np.c_[np.zeros((T, 6)), np.linspace(-1, 1, T)]
            if drop:
                del g[drop]


def test_libero_import_flips_and_maps(tmp_path):
    write_demo(tmp_path / "demo.hdf5")
    eps = load_libero_hdf5(tmp_path / "demo.hdf5", K, np.eye(4), task="put the bowl")
    assert len(eps) == 2 and eps[1].task == "put the bowl"
    img = eps[0].cameras["agentview"].images
    assert (img[:, -1, :, 0] == 255).all() and (img[:, 0, :, 0] == 0).all()     # flipped upright
    np.testing.assert_allclose(eps[1].ee_pos[:, 0], 1 + np.arange(5) * 0.1)
    np.testing.assert_allclose(eps[0].gripper, [0, 0.25, 0.5, 0.75, 1.0])       # open -> closed
    np.testing.assert_allclose(eps[0].action[:, 3], [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(eps[0].action[:-1, :3], eps[0].ee_pos[1:])


def test_missing_field_is_named(tmp_path):
    write_demo(tmp_path / "bad.hdf5", drop="obs/ee_pos")
    with pytest.raises(EpisodeError, match=r"episode 0 \(demo_0\).*ee_pos"):
        load_libero_hdf5(tmp_path / "bad.hdf5", K, np.eye(4))
