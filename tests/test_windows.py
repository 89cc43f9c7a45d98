import dataclasses

import numpy as np
import pytest
import torch

from video_para.data.windows import WindowDataset
from video_para.envs import ENVS
from video_para.envs.expert import generate_demos
from video_para.envs.tabletop import TabletopConfig
from video_para.geometry import Camera


@pytest.fixture(scope="module")
def episodes():
    env = ENVS.build(TabletopConfig(image_height=64, image_width=64))
    return generate_demos(env, [{"bowl_xy": [0.0, 0.2]}, {"bowl_xy": [-0.1, -0.1], "theta": 15, "phi": 90}], progress=False)


def test_window_labels_reproject_onto_the_ee(episodes):
    ds = WindowDataset(episodes, n_window=5)
    assert len(ds) == sum(len(e) for e in episodes)
    for i in range(0, len(ds), 7):
        item = ds[i]
        cam = Camera(item["K"].double(), item["world_from_cam"].double(), 64, 64)
        torch.testing.assert_close(cam.project(item["target_xyz"].double()).float(), item["target_pixels"])
        torch.testing.assert_close(item["target_height"], item["target_xyz"][:, 2] - item["support_z"])
        assert item["image"].shape == (3, 64, 64) and 0 <= item["image"].min() and item["image"].max() <= 1
    last = ds[len(episodes[0]) - 1]                      # final frame: targets repeat the last state
    assert torch.equal(last["target_xyz"][0], last["target_xyz"][-1])


def test_out_of_image_policies(episodes):
    track = episodes[0].cameras["front"]
    K = track.K.copy()
    K[:, :2, :2] *= 1.6                                    # zoom in: far targets leave the image
    ep = dataclasses.replace(episodes[0], cameras={"front": dataclasses.replace(track, K=K)})
    with pytest.warns(UserWarning, match="dropped"):
        dropped = WindowDataset([ep], 5, out_of_image="drop")
    with pytest.raises(ValueError, match="episode 0, frame"):
        WindowDataset([ep], 5, out_of_image="error")
    assert dropped.dropped > 0 and len(dropped) + dropped.dropped == len(ep)
    stats = WindowDataset(episodes, 5).stats()
    assert stats.height_low < stats.height_high and stats.gripper_low < 0 < 1 < stats.gripper_high


def test_shift_augmentation_moves_image_and_camera_together(episodes):
    torch.manual_seed(0)
    plain, shifted = WindowDataset(episodes, 5), WindowDataset(episodes, 5, shift_px=10)
    moved = 0
    for i in range(0, len(plain), 5):
        a, b = plain[i], shifted[i]
        cam = Camera(b["K"].double(), b["world_from_cam"].double(), 64, 64)
        torch.testing.assert_close(cam.project(b["target_xyz"].double()).float(), b["target_pixels"])
        torch.testing.assert_close(cam.project(b["target_xyz"][:1].double()).float()[0] - a["target_pixels"][0],
                                   b["target_pixels"][0] - a["target_pixels"][0])
        d = (b["target_pixels"] - a["target_pixels"])[0].round().long()
        dx, dy = int(d[0]), int(d[1])
        if dx or dy:
            moved += 1
            # the image content moved by the same (dx, dy): compare an interior patch
            ya, xa = slice(max(0, -dy) + 12, 52 - max(0, dy)), slice(max(0, -dx) + 12, 52 - max(0, dx))
            yb, xb = slice(ya.start + dy, ya.stop + dy), slice(xa.start + dx, xa.stop + dx)
            torch.testing.assert_close(b["image"][:, yb, xb], a["image"][:, ya, xa])
        assert ((b["target_pixels"] >= 0) & (b["target_pixels"] < 64)).all()
    assert moved > 0
