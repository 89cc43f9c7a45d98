"""Run a saved policy on an SO-100/SO-101, real or simulated, through one control loop.

    python deploy.py policy=outputs/so100/para/policy robot=so100_sim protocol=so100_pick [env.key=value ...]
    python deploy.py policy=DIR robot=so100_follower calibration=calib.json follower.port=/dev/ttyACM0

One Policy.select_action per control tick (`control_hz`). A tick that finds its queue empty re-plans:
read camera + joints -> FK gives the EE position (the policy's start keypoint) -> Policy.predict ->
N_W world targets + gripper, of which the first `replan_every` are queued. Each action goes through
SafeIK (workspace clamp, EE/joint step limits, IK, FK verification; NaN or unreachable -> hold) and only
then to `send_action`. Between re-plans the loop
tracks the joints it commanded (the position-controlled servos reach them within a tick; LeRobot's
`max_relative_target` fences against the measured ones). A prediction that cannot be made (EE out of
the image, a pixel on the horizon) sends nothing and ends the episode with its reason.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..envs.so100 import SO100SimConfig
from ..geometry import Camera
from ..models.policy import queued
from ..progress import progress
from ..robots.so100.robot import FollowerConfig, GripperMap, Robot, command_to_action, read_motors
from ..robots.so100.safety import SafeIK, SafetyConfig


@dataclass
class DeployConfig:
    policy: str = ""                    # directory written by Policy.save_pretrained
    robot: str = "so100_sim"            # so100_sim | so100_follower (LeRobot, real arm)
    calibration: str = ""               # camera JSON from `python -m video_para.so100.calibrate` (real arm)
    camera: str = "front"               # camera key in the robot's observation dict
    control_hz: float = 10.0            # command rate; 0: as fast as possible (simulation)
    replan_every: int = 0               # actions of each predicted chunk executed before re-planning
                                        # (0: the policy's own, its config.json run.replan_every, else 4)
    max_steps: int = 100                # control ticks per episode
    protocol: str = "so100_pick"        # sim: scenes of this protocol's `split`
    split: str = "test"
    episodes: int = 0                   # sim: 0 = every scene of the split; real: number of runs
    seed: int = 0
    model_path: str = ""                # real arm: MJCF for the kinematics (empty: the bundled SO-101)
    gripper_open: float = 100.0         # real arm: gripper.pos of an open / closed jaw
    gripper_closed: float = 0.0
    safety: SafetyConfig = field(default_factory=SafetyConfig)     # real arm (sim: env.safety)
    env: SO100SimConfig = field(default_factory=SO100SimConfig)
    follower: FollowerConfig = field(default_factory=FollowerConfig)

    def validate(self) -> None:
        if self.robot not in ROBOTS:
            raise ValueError(f"deploy: robot must be one of {tuple(ROBOTS)}, got '{self.robot}'")
        if self.robot == "so100_follower" and not self.calibration:
            raise ValueError("deploy: the real arm needs calibration=<camera JSON> (python -m video_para.so100.calibrate)")
        if self.replan_every < 0 or self.max_steps < 1 or self.control_hz < 0:
            raise ValueError("deploy: max_steps must be positive, replan_every (0: the policy's) and control_hz >= 0")


@dataclass
class EpisodeLog:
    steps: int = 0
    holds: int = 0                      # commands SafeIK refused (the arm held instead)
    limited: int = 0                    # commands SafeIK clamped or shortened
    failure: str = ""                   # why the policy could not predict
    events: list[str] = field(default_factory=list)


class Controller:
    """Policy + calibrated camera + SafeIK: robot observations in, safe motor commands out, one
    select_action per tick. The policy is a saved `Policy` or anything with its `predict(image, camera,
    ee_pos, support_z)`; `replan_every` None keeps the policy's own interval."""

    def __init__(self, policy, camera: Camera, support_z: float, safety: SafeIK, grip: GripperMap,
                 camera_name: str = "front", replan_every: int | None = None):
        self.policy, self.agent, self.camera, self.support_z = policy, queued(policy), camera, float(support_z)
        self.safety, self.grip, self.camera_name, self.replan_every = safety, grip, camera_name, replan_every
        pc = getattr(policy, "config", None)    # a saved Policy knows its input size; any predict() works
        self.size = (pc.image_height, pc.image_width) if pc is not None else (camera.height, camera.width)

    def image_and_camera(self, image: np.ndarray) -> tuple[np.ndarray, Camera]:
        """The frame resized to the policy's input size, with the calibration scaled to match."""
        H, W = image.shape[:2]
        if (H, W) != (self.camera.height, self.camera.width):
            raise ValueError(f"camera '{self.camera_name}' gives {W}x{H} frames but was calibrated at "
                             f"{self.camera.width}x{self.camera.height}")
        h, w = self.size
        if (H, W) == (h, w):
            return image, self.camera
        import cv2
        return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA), self.camera.scaled(w / W, h / H, w, h)

    def run_episode(self, robot: Robot, max_steps: int, control_hz: float = 0.0, done=lambda: False) -> EpisodeLog:
        log, period = EpisodeLog(), 1.0 / control_hz if control_hz else 0.0
        self.safety.reset()
        self.agent.reset(self.replan_every)
        tick = time.perf_counter()
        while log.steps < max_steps and not done():
            replan = not self.agent.queued
            if replan:                  # read camera + joints; between re-plans the commanded joints are tracked
                obs = robot.get_observation()
                q, _ = read_motors(obs)
                image, camera = self.image_and_camera(obs[self.camera_name])
            try:
                if replan:
                    observation = {"image": image, "camera": camera, "ee_pos": self.safety.kin.fk(q),
                                   "support_z": self.support_z}
                xyz_g = self.agent.select_action(observation)
            except (ValueError, FloatingPointError) as e:
                log.failure = str(e).split(";")[0][:160]
                break
            cmd = self.safety.command(q, xyz_g[:3], float(xyz_g[3]))
            robot.send_action(command_to_action(cmd, self.grip))
            q = cmd.joints
            log.steps += 1
            log.holds += cmd.held
            log.limited += bool(cmd.events) and not cmd.held
            log.events += [f"step {log.steps}: {e}" for e in cmd.events][: max(0, 50 - len(log.events))]
            if period:                                   # hold the control rate
                tick += period
                time.sleep(max(0.0, tick - time.perf_counter()))
        return log


def sim_rollout(policy, env, specs: list[dict], cfg: DeployConfig, desc: str = "deploy"):
    """Score `policy` in the MuJoCo SO-101 scene through the deployment loop (the env as the robot,
    its own true camera as the calibration). Returns eval.rollout's RolloutResult and each episode's
    EpisodeLog (holds, limited commands, events)."""
    from ..eval.rollout import EpisodeResult, RolloutResult
    result, logs = RolloutResult(), []
    bar = progress(specs, desc=desc)
    for i, spec in enumerate(bar):
        obs = env.reset(spec, cfg.seed + i)
        name = env.camera_names[0]
        ctl = Controller(policy, obs.cameras[name], obs.support_z, env.safety, env.grip, name, cfg.replan_every or None)
        log = ctl.run_episode(env, cfg.max_steps, 0.0, done=env.success)
        result.episodes.append(EpisodeResult(spec, env.success(), log.steps, env.task_error(), log.failure))
        logs.append(log)
        bar.set_postfix(success=f"{result.successes}/{i + 1}")
    return result, logs


def deploy_sim(policy, cfg: DeployConfig):
    """Every scene of the protocol split in the MuJoCo SO-101 scene (`cfg.env`), scored."""
    from ..envs import ENVS
    from ..scenes import load_protocol, specs
    env = ENVS.build(cfg.env)
    try:
        scenes = specs(load_protocol(cfg.protocol), cfg.split)[: cfg.episodes or None]
        res, logs = sim_rollout(policy, env, scenes, cfg)
    finally:
        env.close()
    print(f"[deploy] {cfg.policy} on {cfg.protocol}/{cfg.split} (sim): {res.successes}/{len(scenes)} succeeded, "
          f"{sum(g.holds for g in logs)} commands held, {sum(g.limited for g in logs)} limited")
    return res


def deploy_follower(policy, cfg: DeployConfig):
    """Episodes on the real arm through LeRobot's SO100Follower, each started by the operator."""
    from ..robots.so100.kinematics import ArmKinematics
    from ..robots.so100.robot import lerobot_follower
    from .calibrate import load_calibration
    camera, support_z = load_calibration(cfg.calibration)
    ctl = Controller(policy, camera, support_z, SafeIK(ArmKinematics(cfg.model_path), cfg.safety),
                     GripperMap(cfg.gripper_open, cfg.gripper_closed), cfg.camera, cfg.replan_every or None)
    robot = lerobot_follower(cfg.follower, cfg.camera)
    try:
        for k in range(cfg.episodes or 1):
            input(f"[deploy] episode {k}: set up the scene, then press Enter (Ctrl-C stops)")
            log = ctl.run_episode(robot, cfg.max_steps, cfg.control_hz)
            print(f"[deploy] {log.steps} steps, {log.holds} holds, {log.limited} limited {log.failure}")
            print("\n".join(log.events[:20]))
    finally:
        robot.disconnect()


# robot= -> deploy(policy, cfg): a new robot is one function and one entry here
ROBOTS = {"so100_sim": deploy_sim, "so100_follower": deploy_follower}


def main(argv: list[str] | None = None):
    from ..config import exit_if_help, load_config
    from ..models.policy import Policy
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = f"python deploy.py policy=DIR [robot={'|'.join(ROBOTS)}] [key=value ...]"
    exit_if_help(argv, usage, __doc__, DeployConfig)
    cfg = load_config(DeployConfig, argv)
    if not cfg.policy:
        sys.exit(f"usage: {usage}")
    return ROBOTS[cfg.robot](Policy.from_pretrained(cfg.policy), cfg)
