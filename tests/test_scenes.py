"""The paper's near->far, hemisphere and new-environment splits, built-in and LIBERO, and the validation
holdouts carved from training cells (tests/test_rollout.py covers left_right, viewpoint, corners, dense and
distractors)."""
import numpy as np
import pytest

from video_para.envs import ENVS
from video_para.envs.tabletop import TabletopConfig
from video_para.scenes import load_protocol, specs


@pytest.mark.parametrize("name", ["near_far", "libero_near_far"])
def test_near_far_trains_nearer_the_camera_than_every_test_scene(name):
    p = load_protocol(name)
    train, test = specs(p, "train"), specs(p, "test")
    assert len(train) == len(test) == 128 and p.paper == {"para": 46, "global_mlp": 7}
    camera = ENVS.build(TabletopConfig()).camera               # the grid frame: x is depth away from it
    depth = {split: camera.project_with_depth(np.array([[*s["bowl_xy"], 0.0] for s in scenes]))[1]
             for split, scenes in (("train", train), ("test", test))}
    assert depth["train"].max() < depth["test"].min()
    assert {s["bowl_xy"][1] for s in train} == {s["bowl_xy"][1] for s in test}   # every column in both


@pytest.mark.parametrize("name", ["hemisphere", "libero_hemisphere"])
def test_hemisphere_splits_the_azimuths_into_disjoint_halves(name):
    p = load_protocol(name)
    train, test = specs(p, "train"), specs(p, "test")
    moved = lambda scenes: {s["phi"] for s in scenes if s["theta"] > 0}      # noqa: E731 (theta 0 has no azimuth)
    assert moved(train) == {0, 45, 90, 135} and moved(test) == {180, 225, 270, 315}
    thetas = lambda scenes: {s["theta"] for s in scenes if s["theta"] > 0}   # noqa: E731
    assert thetas(train) == thetas(test) == set(p.thetas) - {0.0}            # every elevation on both sides
    assert len(train) == 29 * 10 and len(test) == 28 * 10 and p.paper == {"para": 40, "global_mlp": 10}
    with pytest.raises(ValueError, match="train_phis"):
        load_protocol(name, ["train_phis=[0,30]"])


def test_new_environment_tests_in_a_look_no_training_scene_has():
    p = load_protocol("new_environment", ["rows=2", "cols=2"])
    train, test = specs(p, "train"), specs(p, "test")
    assert all("appearance" not in s for s in train) and all(s["appearance"] == p.test_appearance for s in test)
    assert p.paper == {"para": 94, "global_mlp": 0}
    env = ENVS.build(TabletopConfig())
    scene = {k: v for k, v in test[0].items() if k != "appearance"}
    default = env.reset(scene).images["front"]
    new = env.reset(test[0]).images["front"]
    train_images = [env.reset(s).images["front"] for s in train]
    table = env.camera.project(np.array([[-0.15, -0.25, 0.0], [0.15, 0.25, 0.0]])).astype(int)   # bare table
    corner = (slice(0, 4), slice(0, 4))                                                              # background
    for image in train_images:                  # training scenes: the default look, background and table
        assert (image[corner] == (60, 60, 70)).all() and (image[corner] != new[corner]).any(axis=-1).all()
        for u, v in table:
            assert (image[v, u] == default[v, u]).all() and (image[v, u] != new[v, u]).any()
    squares = env.camera.project(np.array([[0.06 * i + 0.03, -0.27, 0.0] for i in range(-3, 1)])).astype(int)
    colors = lambda image: [tuple(image[v, u]) for u, v in squares]          # noqa: E731 (4 squares in a row)
    assert len(set(colors(default))) == 1                                    # plain wood
    a, b, c, d = colors(new)
    assert a == c != b == d                                                  # the checkerboard
    with pytest.raises(ValueError, match="table_colour"):
        env.reset({"appearance": {"table_colour": [1, 2, 3]}})


def test_boundary_holdout_is_the_training_column_next_to_the_test_half():
    p = load_protocol("left_right", ["rows=8", "cols=8", "holdout=boundary"])
    train, val, test = (specs(p, s) for s in ("train", "val", "test"))
    assert sorted({tuple(s["cell"]) for s in val}) == [(r, 3) for r in range(8)]
    assert {s["cell"][1] for s in train} == {0, 1, 2} and len(train) == 24
    assert {s["cell"][1] for s in test} == {4, 5, 6, 7}
    near_far = load_protocol("near_far", ["rows=8", "cols=8", "holdout=boundary"])
    assert {s["cell"][0] for s in specs(near_far, "val")} == {3}
    wide = load_protocol("left_right", ["rows=8", "cols=8", "holdout=boundary", "holdout_width=2"])
    assert {s["cell"][1] for s in specs(wide, "val")} == {2, 3} and {s["cell"][1] for s in specs(wide, "train")} == {0, 1}


def test_stride_holdout_keeps_validation_scenes_clean_like_training():
    p = load_protocol("distractors", ["rows=8", "cols=8", "holdout=stride"])
    train, val = specs(p, "train"), specs(p, "val")
    assert len(val) == len(specs(load_protocol("distractors", ["rows=8", "cols=8"]), "train")) // 4
    assert not {tuple(s["cell"]) for s in train} & {tuple(s["cell"]) for s in val}
    assert all("distractors" not in s for s in train + val) and all(s["distractors"] for s in specs(p, "test"))


def test_validation_clutter_is_its_own_set_and_needs_a_holdout():
    p = load_protocol("distractors", ["rows=8", "cols=8", "holdout=stride", "val_distractors=2"])
    train, val, test = (specs(p, s) for s in ("train", "val", "test"))
    assert all("distractors" not in s for s in train)                       # training stays clean
    assert all(len(s["distractors"]) == 2 and s["distractor_set"] == "val" for s in val)
    assert all(len(s["distractors"]) == 3 and "distractor_set" not in s for s in test)
    for s in val:                                                           # clear of the bowl
        assert min(np.hypot(*(np.array(s["distractors"]) - s["bowl_xy"]).T)) > 0.1
    layouts = specs(load_protocol("distractors", ["rows=8", "cols=8", "holdout=stride", "val_distractors=2",
                                                  "val_layouts=3"]), "val")
    assert len(layouts) == 3 * len(val) and len({str(s["distractors"]) for s in layouts}) == len(layouts)
    assert [s["cell"] for s in layouts[:3]] == [val[0]["cell"]] * 3
    with pytest.raises(ValueError, match="val_layouts > 1.*needs val_distractors"):
        load_protocol("distractors", ["holdout=stride", "val_layouts=2"])
    with pytest.raises(ValueError, match="distractors.*val_distractors needs a validation split"):
        load_protocol("distractors", ["val_distractors=2"])


def test_holdout_errors_name_the_protocol():
    with pytest.raises(ValueError, match="left_right.*no validation split"):
        specs(load_protocol("left_right"), "val")
    with pytest.raises(ValueError, match="distractors.*overlap.*stride"):
        specs(load_protocol("distractors", ["holdout=boundary"]), "val")


def test_init_state_protocols_list_the_envs_own_scenes_instead_of_grid_cells():
    p = load_protocol("libero_init_states", ["train_init_states=[0,1]", "test_init_states=[2]", "thetas=[0,10]",
                                             "phis=[0,90]", "train_theta_max=0"])
    assert specs(p, "train") == [{"init_state": k, "theta": 0.0, "phi": 0.0} for k in (0, 1)]
    assert specs(p, "test") == [{"init_state": 2, "theta": 10.0, "phi": phi} for phi in (0.0, 90.0)]   # views apply
    with pytest.raises(ValueError, match="libero_init_states.*no validation split"):
        specs(p, "val")
    with pytest.raises(ValueError, match="go together"):
        load_protocol("libero_init_states", ["test_init_states=[]"])
    with pytest.raises(ValueError, match="no holdout or distractors"):
        load_protocol("libero_init_states", ["test_distractors=1"])
