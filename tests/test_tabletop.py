import numpy as np
import pytest

from video_para.envs import ENVS
from video_para.envs.expert import run_expert
from video_para.envs.tabletop import TabletopConfig


@pytest.fixture(scope="module")
def env():
    return ENVS.build(TabletopConfig())


def test_ee_projection_lands_on_the_rendered_gripper(env):
    rng = np.random.default_rng(0)
    errors = []
    for i in range(10):
        spec = {"bowl_xy": rng.uniform([-0.2, -0.3], [0.14, 0.3]).tolist(), "theta": float(rng.uniform(0, 25)),
                "phi": float(rng.uniform(0, 360))}
        env.reset(spec, seed=i)
        env.step(rng.uniform([-0.2, -0.25, 0.05], [0.2, 0.25, 0.3]), 0.0)
        image, mask = env.render()
        vs, us = np.nonzero(mask)
        assert mask.sum() > 10
        px = env.camera.project(env.ee)
        d = np.hypot(us + 0.5 - px[0], vs + 0.5 - px[1])
        assert d.min() < 1.0                     # a robot pixel covers the projected EE
        # the rendered (orange) fingertips straddle the EE: their pixel centroid is where it projects
        r, b = image[..., 0].astype(int), image[..., 2].astype(int)
        fv, fu = np.nonzero(mask & (r > 2 * b))
        errors.append(np.hypot(fu.mean() + 0.5 - px[0], fv.mean() + 0.5 - px[1]))
    # measured here: 0.02-1.7 px (perspective and the wrist occluding part of a finger)
    assert np.median(errors) < 0.5 and max(errors) < 2.0


def test_camera_moves_keep_calibration_consistent(env):
    base = env.reset({"bowl_xy": [0.0, 0.0]}).cameras["front"]
    moved = env.reset({"bowl_xy": [0.0, 0.0], "theta": 20, "phi": 45}).cameras["front"]
    assert not np.allclose(base.world_from_cam, moved.world_from_cam)
    np.testing.assert_allclose(base.K, moved.K)
    # the look-at point stays at the image centre and a bowl rim point follows the camera exactly
    np.testing.assert_allclose(moved.project(np.array(env.cfg.look_at)), [64, 64], atol=1e-9)
    img = env.observe().images["front"]
    u, v = moved.project(np.array([0.0, 0.0, env.cfg.bowl_height])).astype(int)
    assert img[v, u].mean() < 90               # the dark bowl is where the moved camera says


def test_grasp_carry_release_and_success(env):
    env.reset({"bowl_xy": [0.0, 0.1]})
    top = env.cfg.bowl_height
    env.step([0.0, 0.1, top - 0.015], 0.0)
    env.step([0.0, 0.1, top - 0.015], 1.0)
    assert env.held is not None
    env.step([0.27, 0.0, 0.1], 1.0)
    assert np.allclose(env.bowl[:2], [0.27, 0.0])
    assert not env.success()                   # still held
    env.step([0.27, 0.0, 0.1], 0.0)
    assert env.success()
    env.reset({"bowl_xy": [0.0, 0.1]})
    env.step([0.05, 0.1, top - 0.015], 1.0)    # closing 5 cm off the rim grasps nothing
    assert env.held is None
    with pytest.raises(ValueError, match="finite"):
        env.step([np.nan, 0, 0], 0.0)


def test_scripted_expert_succeeds_over_grid_and_viewpoints(env):
    rng = np.random.default_rng(1)
    results = []
    for i in range(20):
        spec = {"bowl_xy": rng.uniform([-0.2, -0.3], [0.19, 0.3]).tolist(), "theta": float(rng.uniform(0, 25)),
                "phi": float(rng.choice(np.arange(0, 360, 45)))}
        ep, ok = run_expert(env, spec, seed=i, index=i)
        results.append(ok)
        assert 25 <= len(ep) <= 80 and ep.cameras["front"].K.shape == (len(ep), 3, 3)
        # actions are the next frame's EE state (teleport servo)
        np.testing.assert_allclose(ep.action[:-1, :3], ep.ee_pos[1:], atol=1e-12)
    assert np.mean(results) >= 0.95


def test_validation_clutter_looks_unlike_the_test_clutter(env):
    """The same clutter positions drawn as the test set (cans) and as the validation set (balls in other
    colours): every pixel the test clutter changes has a test-clutter hue (chromaticity), none that the
    validation clutter changes does."""
    from video_para.envs.tabletop import _DISTRACTOR_COLORS
    scene = {"bowl_xy": [0.1, -0.2], "distractors": [[0.0, 0.1], [-0.1, 0.2]]}
    clean = env.reset({"bowl_xy": scene["bowl_xy"]}).images["front"]
    ref = np.array(_DISTRACTOR_COLORS[:2], float)
    ref /= ref.sum(1, keepdims=True)

    def test_hue_share(image):
        px = image[np.any(image != clean, axis=-1)].astype(float)
        assert len(px) > 50                                    # the clutter is in view
        chroma = px / px.sum(1, keepdims=True).clip(1)
        return float((np.abs(chroma[:, None] - ref).max(-1).min(1) < 0.03).mean())

    assert test_hue_share(env.reset(scene).images["front"]) > 0.95
    assert test_hue_share(env.reset({**scene, "distractor_set": "val"}).images["front"]) == 0.0
    with pytest.raises(ValueError, match="distractor_set"):
        env.reset({**scene, "distractor_set": "train"})


def test_bounding_box_culling_renders_the_same_image(env, monkeypatch):
    from video_para.envs import raster
    env.reset({"bowl_xy": [0.1, -0.2], "theta": 20, "phi": 45, "distractors": [[0.0, 0.1]]})
    env.step([0.05, 0.05, 0.1], 1.0)
    culled, mask = env.render()
    monkeypatch.setattr(raster.Rays, "window", lambda self, p: (slice(None), slice(None)))
    full, full_mask = env.render()
    assert np.array_equal(culled, full) and np.array_equal(mask, full_mask)


def test_init_states_are_refused_and_an_unreachable_waypoint_stops_the_expert(env, monkeypatch):
    with pytest.raises(ValueError, match="no init states"):
        env.reset({"init_state": 3})
    # a waypoint out of reach: the servo leaves the EE short of it, so the walk would never end
    monkeypatch.setattr(env, "expert_waypoints", lambda rng: iter([(np.array([0.0, 0.0, -5.0]), 0.0)]))
    monkeypatch.setattr(env, "step", lambda target, g: env.observe())      # the EE stays where it is
    with pytest.raises(RuntimeError, match="not reached after 50 frames"):
        run_expert(env, {"bowl_xy": [0.0, 0.1]}, seed=0, max_frames=50)
