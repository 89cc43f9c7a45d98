"""The so100 configs and pure-Python pieces work without the so100 extra (CI installs only .[dev])."""
import subprocess
import sys

import pytest

from video_para.config import CONFIG_ROOT, load_config
from video_para.envs.so100 import SO100SimConfig
from video_para.so100.deploy import DeployConfig
from video_para.so100.robot import GripperMap, read_motors
from video_para.so100.safety import SafetyConfig


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
