import json
import shlex
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")
from video_para.data.libero_hdf5 import load_libero_hdf5  # noqa: E402
from video_para.episodes import EpisodeError  # noqa: E402
from video_para.geometry import Camera  # noqa: E402

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
    write_demo(tmp_path / "put_the_bowl_demo.hdf5")
    eps = load_libero_hdf5(tmp_path / "put_the_bowl_demo.hdf5", K, np.eye(4), task="a task")
    assert len(eps) == 2 and eps[1].task == "a task"
    assert load_libero_hdf5(tmp_path / "put_the_bowl_demo.hdf5", K, np.eye(4))[0].task == "put the bowl"  # no problem_info
    img = eps[0].cameras["agentview"].images
    assert (img[:, -1, :, 0] == 255).all() and (img[:, 0, :, 0] == 0).all()     # flipped upright
    np.testing.assert_allclose(eps[1].ee_pos[:, 0], 1 + np.arange(5) * 0.1)
    np.testing.assert_allclose(eps[0].gripper, [0, 0.25, 0.5, 0.75, 1.0])       # open -> closed
    np.testing.assert_allclose(eps[0].action[:, 3], [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(eps[0].action[:-1, :3], eps[0].ee_pos[1:])


def test_stride_keeps_every_kth_frame_at_the_divided_rate(tmp_path):
    write_demo(tmp_path / "demo.hdf5")
    ep = load_libero_hdf5(tmp_path / "demo.hdf5", K, np.eye(4), stride=2)[1]
    assert len(ep) == 3 and ep.fps == 10.0                                      # frames 0, 2, 4 of 20 Hz
    np.testing.assert_allclose(ep.timestamps, [0, 0.1, 0.2])
    np.testing.assert_allclose(ep.ee_pos[:, 0], 1 + np.array([0, 2, 4]) * 0.1)
    np.testing.assert_allclose(ep.gripper, [0, 0.5, 1.0])
    np.testing.assert_allclose(ep.action[:-1, :3], ep.ee_pos[1:])               # the next kept frame
    with pytest.raises(ValueError, match="stride"):
        load_libero_hdf5(tmp_path / "demo.hdf5", K, np.eye(4), stride=0)


def test_missing_field_is_named(tmp_path):
    write_demo(tmp_path / "bad.hdf5", drop="obs/ee_pos")
    with pytest.raises(EpisodeError, match=r"episode 0 \(demo_0\).*ee_pos"):
        load_libero_hdf5(tmp_path / "bad.hdf5", K, np.eye(4))


# -- the documented chain (docs/libero.md, "Training on LIBERO's released demos"): convert, then train --------
DOCS = Path(__file__).parents[1] / "docs" / "libero.md"
TASK_FILE = "pick_up_the_black_bowl_between_the_plate_and_the_ramekin_and_place_it_on_the_plate_demo.hdf5"
INSTRUCTION = "pick up the black bowl between the plate and the ramekin and place it on the plate"
SIDE, SUPPORT_Z, N_WINDOW = 32, 0.9, 12
# LIBERO's agentview pose (docs/libero.md: at (0.66, 0, 1.61) facing -x), a 45 degree lens at 32x32 px
CAMERA = Camera.look_at([0.66, 0.0, 1.61], [-0.1, 0.0, SUPPORT_Z], Camera.intrinsics(45.0, SIDE, SIDE), SIDE, SIDE)
CPU_SIZE = [*(f"{k}.image_{d}={SIDE}" for k in ("env", "policy") for d in ("height", "width")),
            "policy.backbone.channels=16", "policy.head.hidden_channels=16", "data.shift_px=2", "train.steps=3",
            "train.batch_size=4", "train.warmup_steps=1", "train.log_every=1", "train.mixed_precision=no",
            "eval.every=0"]                                     # no rollouts during training: no LIBERO env built


def documented(prefix: str) -> list[str]:
    """The arguments after `prefix` on the one command line of docs/libero.md that starts with it."""
    lines = [line for line in DOCS.read_text().splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, f"docs/libero.md: {len(lines)} lines start with '{prefix}'"
    return shlex.split(lines[0].split("#")[0])[len(shlex.split(prefix)):]


def write_libero_file(path, lengths=(14, 16, 18)) -> dict:
    """A demo file in LIBERO's layout: a pick-and-place EE path per demo (inside CAMERA's image), fingers
    closing halfway, a dot drawn at the EE in frames stored upside down. Returns the raw arrays."""
    raw = {"ee": [], "fingers": []}
    with h5py.File(path, "w") as f:
        f.create_group("data").attrs["problem_info"] = json.dumps(
            {"problem_name": "libero_tabletop_manipulation", "language_instruction": INSTRUCTION})
        for d, T in enumerate(lengths):
            s = np.linspace(0, 1, T)
            ee = np.c_[-0.2 + 0.25 * s, 0.1 - 0.25 * s + 0.02 * d, SUPPORT_Z + 0.05 + 0.15 * np.sin(np.pi * s)]
            opening = np.where(s < 0.5, 0.04, 0.01)
            images = np.zeros((T, SIDE, SIDE, 3), np.uint8)
            for t, (u, v) in enumerate(CAMERA.project(ee)):
                images[t, int(v), int(u)] = 255
            g = f.create_group(f"data/demo_{d}")
            g["obs/agentview_rgb"] = images[:, ::-1]                     # LIBERO's OpenGL row order
            g["obs/ee_pos"] = ee
            g["obs/gripper_states"] = np.c_[opening, -opening]
            g["actions"] = np.c_[np.zeros((T, 6)), np.where(s < 0.5, -1.0, 1.0)]
            raw["ee"].append(ee)
            raw["fingers"].append(opening)
    return raw


def test_documented_convert_then_train_chain_trains_on_the_files_demos(tmp_path, monkeypatch, capsys):
    """The docs' two commands on a LIBERO-format file, the simulator's calibration stubbed (the only step
    needing the libero extra): the converter writes every 2nd frame of the file's 20 Hz demos (the LIBERO
    env's 10 Hz, written as the dataset's fps) with that calibration and instruction, and finetune on the
    converted folder trains on exactly those frames."""
    from video_para.data import libero_hdf5
    from video_para.data.lerobot import LeRobotSource
    from video_para.models import Policy
    from video_para.models.stats import Stats
    from video_para.training.cli import main as finetune_main

    def on_disk(args: list[str]) -> list[str]:                 # the docs' paths, under tmp_path
        return [a.replace("PATH/", f"{tmp_path}/").replace("data/libero_spatial_task0", f"{tmp_path}/converted")
                for a in args]

    raw = {k: [a[::2] for a in v] for k, v in write_libero_file(tmp_path / TASK_FILE).items()}   # 14-18 frames
    asked = []
    monkeypatch.setattr(libero_hdf5, "simulator_calibration", lambda *a: asked.append(a) or (CAMERA, SUPPORT_Z))
    out = libero_hdf5.main(on_disk(documented("python -m video_para.data.libero_hdf5 ")))
    assert asked == [("libero_spatial", 0, "agentview", SIDE, SIDE)] and out == tmp_path / "converted"
    assert f"3 episodes (7-9 frames at 10 Hz, 1 in 2 of the file's 20 Hz) of '{INSTRUCTION}'" in capsys.readouterr().out
    src = LeRobotSource(out)
    ep = src.load_episode(2)
    assert len(src) == 3 and ep.task == INSTRUCTION and ep.support_z == SUPPORT_Z
    assert src.fps == ep.fps == 10.0 and json.loads((out / "meta" / "info.json").read_text())["fps"] == 10
    np.testing.assert_allclose(ep.cameras["agentview"].K[0], CAMERA.K)
    np.testing.assert_allclose(ep.ee_pos, raw["ee"][2], atol=1e-6)

    train = documented("python finetune.py experiment=libero_tiny_para ")
    assert "data.source=lerobot" in train and "data.root=data/libero_spatial_task0" in train
    run = tmp_path / "run"
    finetune_main(["experiment=libero_tiny_para", *on_disk(train), *CPU_SIZE, f"output_dir={run}"])
    n_frames = sum(len(ee) for ee in raw["ee"])
    assert f"[data] 3 demos, {n_frames} windows (0 dropped)" in capsys.readouterr().out
    # the policy's statistics are those of the file's EE path and finger openings, every frame a window start
    steps = [np.minimum(np.arange(t + 1, t + 1 + N_WINDOW), len(ee) - 1) for ee in raw["ee"] for t in range(len(ee))]
    per_frame = [(ee, f) for ee, f in zip(raw["ee"], raw["fingers"]) for _ in range(len(ee))]
    xyz = np.concatenate([ee[s] for (ee, _), s in zip(per_frame, steps)])
    gripper = np.concatenate([1 - f[s] / 0.04 for (_, f), s in zip(per_frame, steps)])
    expected = Stats.from_data(xyz, xyz[:, 2] - SUPPORT_Z, gripper)
    saved = json.loads((run / "policy" / "stats.json").read_text())
    for key, value in vars(expected).items():
        if key != "reach_px":                                     # pixels, from the windows (tests/test_windows.py)
            np.testing.assert_allclose(saved[key], value, atol=1e-5, err_msg=key)
    assert len(saved["reach_px"]) == N_WINDOW and min(saved["reach_px"]) > 0
    policy = Policy.from_pretrained(run / "policy")
    assert policy.run["data"]["root"] == str(out) and policy.run["data"]["protocol"] == "libero_left_right"
    track = ep.cameras["agentview"]
    chunk = policy.predict(np.asarray(track.images[0]), track.camera(0), ep.ee_pos[0], ep.support_z)
    assert chunk.actions.shape == (N_WINDOW, 4) and np.isfinite(chunk.actions).all()
