"""The environment interface every rollout, protocol and report is written against.

    env = ENVS.build(config)                  # config: a registered EnvConfig subclass
    obs = env.reset(spec, seed)               # spec: the env's own scene description (a dict:
                                              #   object positions, camera viewpoint, distractors)
    obs = env.step(target_xyz, gripper)       # teleport servo: the EE reaches the world target
                                              #   before the next observation; gripper in [0, 1]
    env.success() -> bool
    env.holding() -> bool | None              # the object is in the gripper (None: not tracked)
    env.task_error() -> float                 # final object-to-target distance, m (NaN: not tracked)
    env.expert_waypoints(rng)                 # the scripted expert's plan for the current scene
    env.close()

An Observation carries images *and* their calibration, so a policy never needs to know which env
produced it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..config import Registry
from ..geometry import Camera


@dataclass
class EnvConfig:
    type: str = "tabletop"
    image_height: int = 128              # rendered camera images; the policy's image size must match
    image_width: int = 128

    def validate(self) -> None:
        """Check settings before anything is built (experiment.validate calls it); envs extend it."""


ENVS = Registry("env", EnvConfig)


@dataclass
class Observation:
    images: dict[str, np.ndarray]     # camera name -> (H, W, 3) uint8
    cameras: dict[str, Camera]        # camera name -> calibration of that image
    ee_pos: np.ndarray                # (3,) world end-effector position
    gripper: float                    # state in [0, 1] (0 open, 1 closed)
    support_z: float                  # support-surface height in the world frame
    masks: dict[str, np.ndarray] | None = None   # camera name -> (H, W) bool robot pixels, when the env
                                                 # can tell (point-track pretraining removes the robot)


class Env(ABC):
    camera_names: list[str]
    task: str
    fps: float = 10.0                          # recording rate of expert demos

    def expert_waypoints(self, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, float]]:
        """(world EE target, gripper) waypoints that solve the task from the current scene (one
        choreography, envs/expert.pick_and_place, placed per env); the expert walks them at a bounded
        speed, so every env gets demos from the same recorder."""
        raise NotImplementedError(f"{type(self).__name__} has no scripted expert")

    @abstractmethod
    def reset(self, spec: dict | None = None, seed: int | None = None) -> Observation: ...

    @abstractmethod
    def step(self, target_xyz: np.ndarray, gripper: float) -> Observation: ...

    @abstractmethod
    def success(self) -> bool: ...

    def holding(self) -> bool | None:
        """Whether the task's object is in the gripper now; rollouts count grasps with it to tell
        "never grasped" from "grasped, then dropped or misplaced". None when the env cannot tell."""
        return None

    def task_error(self) -> float:
        """Horizontal distance (m) from the task's object to its target now (bowl to plate, cube to
        zone); rollouts report it as the final error. NaN when the env cannot tell."""
        return float("nan")

    def close(self) -> None:
        pass


def refuse_init_state(spec: dict, env: str) -> None:
    """Envs without a benchmark's stored init states refuse a spec naming one: a layout drawn from the
    seed would silently stand in for it."""
    if "init_state" in spec:
        raise ValueError(f"the {env} env has no init states (spec init_state={spec['init_state']}); "
                         "they are LIBERO's: env=@env/libero")


def distractor_set(spec: dict, env: str) -> str:
    """Which clutter a spec's distractors are: 'test' (the default) or 'val', the validation set that
    looks unlike it (scenes.py val_distractors)."""
    name = spec.get("distractor_set", "test")
    if name not in ("test", "val"):
        raise ValueError(f"{env} distractor_set must be 'test' or 'val', got {name!r}")
    return name


def kinematic_grasp(obj: np.ndarray, ee: np.ndarray, held: np.ndarray | None, was_closed: bool, closed: bool,
                    graspable: Callable[[], bool], rest_z: Callable[[np.ndarray], float]):
    """Grasping in a teleport-servo env without contact dynamics: the gripper closing on a graspable
    object fixes its offset from the EE (`held`), the object then moves rigidly with the EE, and
    opening sets it down at height rest_z(obj). Returns the object's new position and `held`."""
    if closed and not was_closed and held is None and graspable():
        held = obj - ee
    if not closed and held is not None:
        held = None
        obj[2] = rest_z(obj)
    return (obj if held is None else ee + held), held
