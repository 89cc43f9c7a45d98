"""Built-in tabletop scene modelled on LIBERO-spatial task 0: put the black bowl on the plate.

A table, a black bowl, a plate, optional distractors, and a gripper that reaches commanded EE
positions exactly (teleport servo) and grasps the bowl when it closes around its rim. Rendered by
the exact ray caster in raster.py from a camera placed by spherical parameters and perturbed by the
paper's (theta, phi) viewpoint offsets. World frame: metres, z up, table top at `support_z`.

Scene spec (a dict, all keys optional): bowl_xy, plate_xy, theta, phi (viewpoint offset, degrees),
distractors (list of [x, y]), distractor_set ('test', default: coloured cans; 'val': balls in other
colours, the validation clutter that choosing variants may look at), appearance (fields of
`Appearance`: table, background, light).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from ..episodes import GRIPPER_CLOSED_AT
from ..geometry import Camera
from .base import ENVS, Env, EnvConfig, Observation, distractor_set, kinematic_grasp, refuse_init_state
from .expert import pick_and_place
from .raster import Cylinder, Disc, Rays, Sphere, render

ROBOT_TAG = 1
_DISTRACTOR_COLORS = [(200, 40, 40), (40, 160, 60), (230, 200, 40), (150, 60, 200)]
_VAL_DISTRACTOR_COLORS = [(30, 170, 190), (230, 110, 170), (130, 90, 50), (170, 230, 90)]   # none like the fingers


@dataclass
class Appearance:
    """How the scene looks. The defaults are the look of every protocol that sets none; a protocol's
    train/test_appearance overrides fields per scene (the paper's new-environment test)."""
    table_color: tuple = (150, 110, 75)
    table_color2: tuple = (0, 0, 0)      # the checkerboard's other squares
    table_checker: float = 0.0           # side of the table's checkerboard squares (m); 0: plain table
    background: tuple = (60, 60, 70)
    light_dir: tuple = (0.3, -0.4, 0.87)   # towards the light, world frame
    light_level: float = 1.0             # scales all shading

    @classmethod
    def from_spec(cls, spec: dict) -> "Appearance":
        values = spec.get("appearance", {})
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"tabletop appearance has no {sorted(unknown)}; fields: {[f.name for f in fields(cls)]}")
        return cls(**values)


@dataclass
class TabletopConfig(EnvConfig):
    type: str = "tabletop"
    support_z: float = 0.0
    camera_radius: float = 1.0           # metres from the look-at point
    camera_elevation: float = 55.0       # degrees above the table plane
    camera_azimuth: float = 180.0        # degrees about +z; 180 = camera on the -x side
    camera_fov: float = 45.0             # vertical field of view, degrees
    look_at: list[float] = field(default_factory=lambda: [0.04, 0.0, 0.03])
    bowl_radius: float = 0.05
    bowl_height: float = 0.04
    plate_radius: float = 0.08
    plate_xy: list[float] = field(default_factory=lambda: [0.27, 0.0])
    home: list[float] = field(default_factory=lambda: [-0.1, 0.0, 0.2])
    grasp_tolerance: float = 0.03        # horizontal EE-to-rim distance that still grasps (m)
    max_steps: int = 120                 # not read (rollouts run eval.max_steps); saved run configs carry it


class TabletopEnv(Env):
    task = "put the black bowl on the plate"
    camera_names = ["front"]

    def __init__(self, cfg: TabletopConfig):
        self.cfg = cfg
        W, H = cfg.image_width, cfg.image_height
        K = Camera.intrinsics(cfg.camera_fov, W, H)
        self.base_camera = Camera.spherical(cfg.look_at, cfg.camera_radius, cfg.camera_elevation,
                                            cfg.camera_azimuth, K, W, H)
        self.camera, self._rays = self.base_camera, Rays(self.base_camera)
        self.spec: dict = {}

    # -- state ------------------------------------------------------------------------------
    def reset(self, spec: dict | None = None, seed: int | None = None) -> Observation:
        c, rng = self.cfg, np.random.default_rng(seed)
        self.spec = dict(spec or {})
        refuse_init_state(self.spec, "tabletop")
        bowl_xy = self.spec.get("bowl_xy", rng.uniform([-0.2, -0.3], [0.14, 0.3]))
        self.bowl = np.array([*bowl_xy, c.support_z], dtype=np.float64)          # base centre
        self.plate = np.array([*self.spec.get("plate_xy", c.plate_xy), c.support_z])
        self.distractors = [np.asarray(d, dtype=np.float64) for d in self.spec.get("distractors", [])]
        self.val_clutter = distractor_set(self.spec, "tabletop") == "val"
        self.look = Appearance.from_spec(self.spec)
        theta, phi = float(self.spec.get("theta", 0.0)), float(self.spec.get("phi", 0.0))
        cam = self.base_camera.orbit(c.look_at, theta, phi) if theta else self.base_camera
        if cam is not self.camera:
            self.camera, self._rays = cam, Rays(cam)
        self.ee = np.array(c.home, dtype=np.float64)
        self.gripper, self.held = 0.0, None
        return self.observe()

    def step(self, target_xyz, gripper: float) -> Observation:
        target = np.asarray(target_xyz, dtype=np.float64)
        if target.shape != (3,) or not np.isfinite(target).all() or not np.isfinite(gripper):
            raise ValueError(f"tabletop step needs a finite (3,) target and gripper, got {target_xyz}, {gripper}")
        c = self.cfg
        self.ee = np.array([target[0], target[1], max(target[2], c.support_z + 0.005)])
        self.bowl, self.held = kinematic_grasp(self.bowl, self.ee, self.held, self.gripper >= GRIPPER_CLOSED_AT,
                                               gripper >= GRIPPER_CLOSED_AT, self._graspable, self._rest_z)
        self.gripper = float(np.clip(gripper, 0, 1))
        return self.observe()

    def _rest_z(self, bowl: np.ndarray) -> float:
        """A released bowl stands on the plate (1 cm up) or on the table."""
        c = self.cfg
        return c.support_z + (0.01 if np.linalg.norm(bowl[:2] - self.plate[:2]) <= c.plate_radius else 0.0)

    def _graspable(self) -> bool:
        c = self.cfg
        d = np.linalg.norm(self.ee[:2] - self.bowl[:2])
        top = self.bowl[2] + c.bowl_height
        return d <= c.grasp_tolerance and top - 0.035 <= self.ee[2] <= top + 0.01

    def expert_waypoints(self, rng: np.random.Generator):
        """Pick the bowl by its rim and place it on the plate, jittered a little so that demos are not
        all identical."""
        c = self.cfg
        top = self.bowl[2] + c.bowl_height
        bowl, plate = self.bowl[:2] + rng.normal(0, 0.004, 2), self.plate[:2] + rng.normal(0, 0.006, 2)
        lift = c.support_z + 0.16 + rng.uniform(-0.02, 0.02)
        return pick_and_place(np.r_[bowl, top - 0.015], top + 0.08, lift, plate, c.support_z + 0.07)

    def holding(self) -> bool:
        return self.held is not None

    def success(self) -> bool:
        c = self.cfg
        return (self.held is None and self.bowl[2] > c.support_z
                and np.linalg.norm(self.bowl[:2] - self.plate[:2]) <= c.plate_radius - 0.02)

    def task_error(self) -> float:
        return float(np.linalg.norm(self.bowl[:2] - self.plate[:2]))

    # -- rendering --------------------------------------------------------------------------
    def primitives(self) -> list:
        c, z, look = self.cfg, self.cfg.support_z, self.look
        prims = [Disc((0.05, 0.0), z, 0, look.table_color, half_extent=(0.45, 0.55), checker=look.table_checker,
                      color2=look.table_color2),
                 Disc(tuple(self.plate[:2]), self.plate[2] + 0.01, c.plate_radius, (225, 225, 215)),
                 Cylinder(tuple(self.plate[:2]), z, z + 0.01, c.plate_radius, (200, 200, 190))]
        b, r, h = self.bowl, c.bowl_radius, c.bowl_height
        prims += [Cylinder(tuple(b[:2]), b[2], b[2] + h, r, (35, 35, 40)),
                  Disc(tuple(b[:2]), b[2] + 0.004, r * 0.95, (70, 70, 80))]
        for i, d in enumerate(self.distractors):
            if self.val_clutter:
                prims.append(Sphere((d[0], d[1], z + 0.03), 0.03, _VAL_DISTRACTOR_COLORS[i % 4]))
            else:
                prims.append(Cylinder(tuple(d[:2]), z, z + 0.06, 0.025, _DISTRACTOR_COLORS[i % 4]))
                prims.append(Disc(tuple(d[:2]), z + 0.06, 0.025, _DISTRACTOR_COLORS[i % 4]))
        e = self.ee
        spread = 0.035 - 0.02 * self.gripper                 # fingers close with the gripper
        prims += [Cylinder(tuple(e[:2]), e[2] + 0.02, e[2] + 0.25, 0.012, (90, 110, 200), ROBOT_TAG),
                  Sphere((e[0], e[1], e[2] + 0.02), 0.02, (90, 110, 200), ROBOT_TAG),
                  Sphere((e[0], e[1] + spread, e[2]), 0.012, (240, 120, 30), ROBOT_TAG),
                  Sphere((e[0], e[1] - spread, e[2]), 0.012, (240, 120, 30), ROBOT_TAG)]
        return prims

    def render(self) -> tuple[np.ndarray, np.ndarray]:
        """(image, robot mask) from the current camera."""
        image, tags = render(self._rays, self.primitives(), self.look.background, self.look.light_dir,
                             self.look.light_level)
        return image, tags == ROBOT_TAG

    def observe(self) -> Observation:
        image, robot = self.render()
        return Observation({"front": image}, {"front": self.camera}, self.ee.copy(), self.gripper,
                           self.cfg.support_z, masks={"front": robot})


@ENVS.register("tabletop", TabletopConfig)
def build_tabletop(cfg: TabletopConfig) -> TabletopEnv:
    return TabletopEnv(cfg)
