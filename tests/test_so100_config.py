"""The so100 configs and pure-Python pieces work without the so100 extra (CI installs only .[dev])."""
import subprocess
import sys

import pytest

from video_para.config import CONFIG_ROOT, load_config
from video_para.envs.so100 import SO100SimConfig
from video_para.robots.so100.robot import GripperMap, read_motors
from video_para.robots.so100.safety import SafetyConfig
from video_para.so100.deploy import DeployConfig


def test_importing_the_envs_and_so100_packages_does_not_import_mujoco():
    code = ("import sys, video_para.envs, video_para.so100.deploy, video_para.so100.calibrate; "
            "print('mujoco' in sys.modules, 'cv2' in sys.modules, 'lerobot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]


def test_env_yaml_maps_to_the_typed_config_and_typos_are_errors():
    cfg = load_config(SO100SimConfig, [f"config={CONFIG_ROOT / 'env/so100_sim.yaml'}", "safety.max_ee_step=0.02"])
    assert cfg.type == "so100_sim" and cfg.safety.max_ee_step == 0.02 and cfg.target_xy == [0.2, -0.16]
    with pytest.raises(ValueError, match="max_ee_stp"):
        load_config(SO100SimConfig, ["safety.max_ee_stp=0.02"])


def test_bad_safety_and_deploy_settings_are_refused():
    with pytest.raises(ValueError, match="below workspace_max"):
        SafetyConfig(workspace_min=[0, 0, 0.3], workspace_max=[0.4, 0.2, 0.1]).validate()
    with pytest.raises(ValueError, match="calibration"):
        load_config(DeployConfig, ["policy=p", "robot=so100_follower"])
    with pytest.raises(ValueError, match="robot must be one of"):
        load_config(DeployConfig, ["robot=ur5"])


def test_gripper_map_and_motor_dicts():
    g = GripperMap(open=80.0, closed=5.0)
    assert g.to_unit(80.0) == 0.0 and g.to_unit(5.0) == 1.0 and g.to_unit(-30.0) == 1.0
    assert g.to_pos(0.5) == pytest.approx(42.5)
    with pytest.raises(KeyError, match="wrist_roll.pos"):
        read_motors({"shoulder_pan.pos": 0, "shoulder_lift.pos": 0, "elbow_flex.pos": 0, "wrist_flex.pos": 0,
                     "gripper.pos": 0})


def test_deploy_loop_reads_the_robot_only_to_replan_and_sends_each_queued_action():
    """The Controller drives any predict() through select_action: the robot is read on re-plan ticks,
    the EE of the start keypoint is FK of the measured joints, and SafeIK sees the commanded joints between."""
    import numpy as np

    from video_para.geometry import Camera
    from video_para.models.policy import ActionChunk
    from video_para.robots.so100.safety import SafeCommand
    from video_para.so100.deploy import Controller

    cam = Camera.look_at([0.3, -0.5, 0.5], [0.2, 0.0, 0.0], Camera.intrinsics(60, 32, 32), 32, 32)
    plan = np.c_[np.linspace(0.1, 0.3, 12), np.zeros((12, 1)), np.full((12, 1), 0.1), np.zeros((12, 1))]

    class Planner:
        starts = []

        def predict(self, image, camera, ee_pos, support_z):
            self.starts.append(np.asarray(ee_pos).copy())
            return ActionChunk(plan[len(self.starts) - 1:][:12], np.zeros((12, 2)), None)

    class Safety:
        kin = type("Kin", (), {"fk": staticmethod(lambda q: np.r_[q[:3] / 100, 0.0][:3])})()
        seen = []

        def reset(self):
            pass

        def command(self, q, xyz, g):
            self.seen.append(np.asarray(q).copy())
            return SafeCommand(np.asarray(q) + 1.0, g, xyz)

    class Robot:
        reads, sent = 0, []

        def get_observation(self):
            self.reads += 1
            return {"front": np.zeros((32, 32, 3), np.uint8), **{f"{m}.pos": 10.0 * self.reads for m in
                    ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")}}

        def send_action(self, action):
            self.sent.append(action)

    planner, safety, robot = Planner(), Safety(), Robot()
    ctl = Controller(planner, cam, 0.0, safety, GripperMap(), replan_every=3)
    log = ctl.run_episode(robot, max_steps=7)
    assert log.steps == 7 and len(robot.sent) == 7 and robot.reads == 3        # re-planned at ticks 0, 3, 6
    np.testing.assert_allclose(planner.starts[1], [0.2, 0.2, 0.2])             # FK of the second reading
    np.testing.assert_allclose(safety.seen[1], np.full(5, 11.0))                # the commanded joints in between
