"""The small robot protocol the deployment loop talks to, and its two implementations.

    robot.get_observation() -> {"shoulder_pan.pos": deg, ..., "gripper.pos": 0..100, "<camera>": HxWx3 uint8}
    robot.send_action({"shoulder_pan.pos": deg, ..., "gripper.pos": 0..100}) -> the action sent

These are LeRobot's `SO100Follower` dicts (with `use_degrees=True`), so the real arm plugs in as is
(`lerobot_follower`, lerobot imported only when called), and `envs.so100.SO100SimEnv` implements the
same two methods for the simulated arm.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .kinematics import ARM_JOINTS, GRIPPER_JOINT
from .safety import SafeCommand


class Robot(Protocol):
    def get_observation(self) -> dict: ...
    def send_action(self, action: dict) -> dict: ...


@dataclass
class GripperMap:
    """LeRobot's gripper.pos (0..100 after calibration) <-> our gripper state in [0, 1] (0 open)."""

    open: float = 100.0
    closed: float = 0.0

    def __post_init__(self):
        if self.open == self.closed:
            raise ValueError(f"gripper open and closed positions are both {self.open}")

    def to_unit(self, pos: float) -> float:
        return float(np.clip((pos - self.open) / (self.closed - self.open), 0.0, 1.0))

    def to_pos(self, unit: float) -> float:
        return float(self.open + np.clip(unit, 0.0, 1.0) * (self.closed - self.open))


def motors_to_obs(joints_deg, gripper_pos: float) -> dict:
    return {**{f"{j}.pos": float(v) for j, v in zip(ARM_JOINTS, joints_deg)}, f"{GRIPPER_JOINT}.pos": float(gripper_pos)}


def read_motors(obs: dict) -> tuple[np.ndarray, float]:
    """(5,) arm joints in degrees and gripper.pos from an observation/action dict."""
    missing = [f"{m}.pos" for m in (*ARM_JOINTS, GRIPPER_JOINT) if f"{m}.pos" not in obs]
    if missing:
        raise KeyError(f"robot dict lacks {missing}; got keys {sorted(obs)[:10]}")
    return np.array([float(obs[f"{j}.pos"]) for j in ARM_JOINTS]), float(obs[f"{GRIPPER_JOINT}.pos"])


action_to_motors = read_motors


def command_to_action(cmd: SafeCommand, grip: GripperMap) -> dict:
    """A verified SafeCommand -> the action dict for send_action (finite by construction)."""
    action = motors_to_obs(cmd.joints, grip.to_pos(cmd.gripper))
    if not all(np.isfinite(v) for v in action.values()):           # SafeIK guarantees this; belt and braces
        raise FloatingPointError(f"refusing to send a non-finite action {action}")
    return action


@dataclass
class FollowerConfig:
    """LeRobot SO100Follower settings (see `lerobot.robots.so_follower.SO100FollowerConfig`)."""

    port: str = "/dev/ttyACM0"
    id: str = "so100_follower"
    camera_index: int | str = 0          # OpenCV camera index or device path
    camera_width: int = 640
    camera_height: int = 480
    camera_fps: int = 30
    max_relative_target: float | None = 10.0    # LeRobot's own per-command joint clamp (degrees), a second fence
    extra: dict = field(default_factory=dict)   # any other SO100FollowerConfig field


def lerobot_follower(cfg: FollowerConfig, camera_name: str):
    """A connected LeRobot SO100Follower. Needs `lerobot[feetech]` (Python >= 3.12 for lerobot >= 0.5;
    it cannot share the 3.11 training venv, see docs/so100.md). Untested here: no arm on this machine."""
    try:
        from lerobot.cameras.opencv.configuration_opencv import OpenCVCameraConfig
        from lerobot.robots.so_follower import SO100Follower, SO100FollowerConfig
    except ImportError as e:
        raise ImportError("the real SO-100 needs lerobot: see docs/so100.md (a Python 3.12 venv with "
                          "lerobot[feetech]==0.6.1 and this package installed)") from e
    cams = {camera_name: OpenCVCameraConfig(index_or_path=cfg.camera_index, width=cfg.camera_width,
                                            height=cfg.camera_height, fps=cfg.camera_fps)}
    robot = SO100Follower(SO100FollowerConfig(port=cfg.port, id=cfg.id, cameras=cams, use_degrees=True,
                                              max_relative_target=cfg.max_relative_target, **cfg.extra))
    robot.connect()
    return robot
