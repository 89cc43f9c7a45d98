import dataclasses

import numpy as np
import pytest
import torch
from dot_track import dot_track

from video_para.data.config import DataConfig
from video_para.data.windows import OCCLUDER_CLEARANCE_PX, WindowDataset
from video_para.envs import ENVS
from video_para.envs.expert import generate_demos
from video_para.envs.tabletop import TabletopConfig
from video_para.episodes import Episode
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
        assert item["image"].shape == (3, 64, 64) and 0 <= item["image"].min() and item["image"].max() <= 1
    last = ds[len(episodes[0]) - 1]                      # final frame: targets repeat the last state
    assert torch.equal(last["target_xyz"][0], last["target_xyz"][-1])


@pytest.mark.parametrize("kw,scale", [({}, 1.0), ({"shift_px": 10}, 1.0), ({"image_size": (32, 32)}, 0.5)])
def test_stats_reach_is_the_farthest_item_target_from_its_start_pixel(episodes, kw, scale):
    # the reach PARA's reach_margin decoding uses, in the pixels the items carry (shifts keep it, a resize scales it)
    ds = WindowDataset(episodes, n_window=5, **kw)
    items = [ds[i, i] for i in range(len(ds))]
    brute = torch.stack([(it["target_pixels"] - it["start_pixel"]).norm(dim=-1) for it in items]).amax(0)
    reach = ds.stats().reach_px
    assert len(reach) == 5 and reach[0] < reach[-1]                       # later steps reach farther
    np.testing.assert_allclose(reach, brute.numpy(), rtol=1e-4, atol=1e-3)
    if scale != 1.0:
        np.testing.assert_allclose(reach, np.asarray(WindowDataset(episodes, 5).stats().reach_px) * scale, rtol=1e-6)


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


def dot_episode(W: int, H: int, T: int = 8, radius: float = 6.0, support_z: float = 0.0,
                heights=None, gripper=None) -> Episode:
    """A W x H camera over a grey table, an orange disc drawn at the projected EE in every frame; the EE
    `heights` (default 0.2 -> 0.05 m) above the table top at z = `support_z`."""
    K = np.array([[0.9 * W, 0, W / 2], [0, 0.9 * W, H / 2], [0, 0, 1.0]])
    cam = Camera.look_at([0.0, -0.6, 0.7 + support_z], [0.0, 0.0, support_z], K, width=W, height=H)
    heights = np.linspace(0.2, 0.05, T) if heights is None else np.asarray(heights)
    gripper = np.zeros(T) if gripper is None else np.asarray(gripper, dtype=float)
    ee = np.c_[np.linspace(-0.15, 0.15, T), np.linspace(-0.05, 0.05, T), support_z + heights]
    track = dot_track(cam, ee, 90, radius, (255, 140, 0))
    return Episode(0, "reach", 10.0, np.arange(T) / 10.0, ee, gripper, np.c_[ee, gripper], support_z,
                   {"front": track}).validate()


def test_window_targets_are_the_next_heights_above_the_support_and_repeat_the_last():
    """EE heights above a raised table (z = 0.3 + h) known by construction: each window's labels are the
    next three heights and gripper states, the last state repeating past the end; the stats span them."""
    ep = dot_episode(64, 64, T=5, support_z=0.3, heights=[0.10, 0.08, 0.06, 0.04, 0.02], gripper=[0, 0, 1, 1, 0])
    ds = WindowDataset([ep], n_window=3)
    heights = [[0.08, 0.06, 0.04], [0.06, 0.04, 0.02], [0.04, 0.02, 0.02], [0.02, 0.02, 0.02], [0.02, 0.02, 0.02]]
    grippers = [[0, 1, 1], [1, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert len(ds) == 5
    for t in range(5):
        torch.testing.assert_close(ds[t]["target_height"], torch.tensor(heights[t]))
        torch.testing.assert_close(ds[t]["target_gripper"], torch.tensor(grippers[t], dtype=torch.float32))
        torch.testing.assert_close(ds[t]["support_z"], torch.tensor(0.3))
    # bin ranges: the targets' range widened by 5% of its span on each side
    stats = ds.stats()
    assert (stats.height_low, stats.height_high, stats.gripper_low, stats.gripper_high, stats.gripper_mean) == \
        pytest.approx((0.017, 0.083, -0.05, 1.05, 5 / 15))


@pytest.mark.parametrize("size,scale", [((160, 120), (0.3, 1.0)), ((96, 96), (0.5, 0.5)), ((64, 64), (1.0, 1.0))])
def test_resized_crop_keeps_labels_on_the_ee(size, scale):
    """Datasets recorded at another resolution train at the policy's size: the crop's camera projects
    the world EE exactly onto the returned target pixels, and the image shows the EE disc there."""
    ep = dot_episode(*size)
    ds = WindowDataset([ep], n_window=3, image_size=(48, 64), crop_scale=scale)
    Ks, checked = set(), 0
    for i in range(len(ds)):
        for seed in range(4):
            item = ds[i, seed]
            assert item["image"].shape == (3, 48, 64)
            cam = Camera(item["K"].double(), item["world_from_cam"].double(), 64, 48)
            torch.testing.assert_close(cam.project(item["target_xyz"].double()).float(), item["target_pixels"])
            start = cam.project(torch.as_tensor(ep.ee_pos[i]))
            torch.testing.assert_close(start.float(), item["start_pixel"])
            assert ((item["target_pixels"] >= 0) & (item["target_pixels"] < torch.tensor([64, 48]))).all()
            u, v = item["start_pixel"].tolist()
            if min(u, v, 64 - u, 48 - v) > 6 * item["K"][0, 0] / ep.cameras["front"].K[0, 0, 0] + 1:
                # the disc lies whole inside the crop: its centroid is the start pixel (drawing error < 0.2 px;
                # an image/K mismatch of one source pixel moves it by > 0.6 px here)
                img = item["image"]
                w = (img[0] - img[2]).clamp(min=0) * (img[0] > 0.5)
                vv, uu = torch.meshgrid(torch.arange(48) + 0.5, torch.arange(64) + 0.5, indexing="ij")
                centroid = torch.stack([(w * uu).sum(), (w * vv).sum()]) / w.sum()
                torch.testing.assert_close(centroid, item["start_pixel"], atol=0.3, rtol=0)
                checked += 1
            Ks.add(tuple(item["K"].flatten().tolist()))
    assert (len(Ks) > 1) == (scale != (1.0, 1.0) or size[0] * 48 != size[1] * 64)   # random only if it may be
    assert checked >= len(ds)


def test_resized_crop_falls_back_to_a_full_resize_when_no_crop_holds_the_window():
    ep = dot_episode(200, 60, radius=3)                   # wide image, square output: targets span the width
    ds = WindowDataset([ep], n_window=7, image_size=(32, 32), crop_scale=(1.0, 1.0))
    item = ds[0, 0]
    assert item["K"][0, 0] / item["K"][1, 1] == pytest.approx((32 / 200) / (32 / 60))   # sx != sy
    cam = Camera(item["K"].double(), item["world_from_cam"].double(), 32, 32)
    torch.testing.assert_close(cam.project(item["target_xyz"].double()).float(), item["target_pixels"])


def test_lazy_and_memory_windows_agree_with_workers(episodes, tmp_path):
    from torch.utils.data import DataLoader

    from video_para.data.lerobot import LeRobotSource, write_dataset
    from video_para.data.video import VideoFrames
    src = LeRobotSource(write_dataset(episodes, tmp_path / "ds"))
    kw = dict(n_window=5, clip_frames=3, clip_stride=2)
    memory = WindowDataset([src.load_episode(i) for i in range(len(src))], **kw)
    lazy = WindowDataset([src.load_episode(i, lazy=True) for i in range(len(src))], **kw)
    assert isinstance(lazy.episodes[0].cameras["front"].images, VideoFrames) and len(lazy) == len(memory)
    for i in (0, 9, len(lazy) - 1):
        a, b = memory[i], lazy[i]
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], msg=k)            # same file, same decoder: identical
    # the parent has decoded already: workers must open their own decoders, not reuse the forked one
    idx = list(range(0, len(lazy), 3))
    batches = [next(iter(DataLoader(torch.utils.data.Subset(ds, idx), batch_size=len(idx), num_workers=w)))
               for ds, w in ((memory, 0), (lazy, 2))]
    for k in batches[0]:
        torch.testing.assert_close(batches[0][k], batches[1][k], msg=k)


def test_occluders_paste_solid_rectangles_clear_of_the_window_pixels(episodes):
    plain = WindowDataset(episodes, 5, clip_frames=2)
    occluded = WindowDataset(episodes, 5, clip_frames=2, occluders=3, occluder_size_px=(4, 12))
    pasted = 0
    for i in range(0, len(plain), 3):
        a, b = plain[i, i], occluded[i, i]
        for key in ("target_pixels", "start_pixel", "target_xyz", "K"):
            assert torch.equal(a[key], b[key])                          # labels and camera untouched
        assert torch.equal(occluded[i, i]["clip"], b["clip"])           # a function of the key alone
        changed = (a["clip"] != b["clip"]).any(1)                         # (T, H, W)
        assert torch.equal(changed[0], changed[1])                        # the same occluders in every frame
        if changed[0].any():
            pasted += 1
            vv, uu = torch.nonzero(changed[0], as_tuple=True)
            pix = torch.cat([b["start_pixel"][None], b["target_pixels"]])
            gap = (torch.stack([uu + 0.5, vv + 0.5], -1)[:, None] - pix[None]).abs().amax(-1).amin()
            assert gap >= OCCLUDER_CLEARANCE_PX                            # never on or next to a window pixel
            colors = b["clip"][0].permute(1, 2, 0)[changed[0]].unique(dim=0)
            assert len(colors) <= 3                                       # each occluder one solid colour
    assert pasted > len(range(0, len(plain), 3)) // 3
    with pytest.raises(ValueError, match="occluder_size_px"):
        DataConfig(occluder_size_px=[5, 2]).validate()
