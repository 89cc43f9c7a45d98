"""LIBERO behind the Env interface: LIBERO-spatial task 0 ("pick up the black bowl between the plate and
the ramekin and place it on the plate") with the paper's object-position and viewpoint grids.

Needs the `libero` extra (`pip install -e '.[libero]'`, MuJoCo rendering through `MUJOCO_GL=egl` or
`osmesa`); this module imports without it, LIBERO is loaded by the builder (see libero_sim.py).

Scene specs use the protocol's *grid frame* (the frame of the built-in tabletop scene): x is depth away
from the camera, y is lateral with +y on the image's left, metres. A grid point p maps to the world as
`grid_center + Rz(grid_yaw) p` (the agentview camera faces -x, hence the default yaw of 180 deg); z is
the table top, read from the table's collision geom. With `bowl_xy` in the spec the scene is
re-arranged for the grid: the bowl goes to the cell, the plate to `plate_xy` (grid frame), up to
len(distractor_bodies) clutter objects (val_distractor_bodies for `distractor_set: val`) to
`spec["distractors"]`, and every other listed object is parked
out of view. `init_state: k` picks LIBERO's init state k (a protocol's train/test_init_states: the task's
own layouts, as the LIBERO benchmark evaluates it); without it and without `bowl_xy` the seed picks one.
`theta`, `phi` orbit the camera about `look_at` exactly as the built-in scene does (Camera.orbit).
`appearance` (fields of `LiberoAppearance`) changes the table, walls, floor and lights of that one scene.

Execution is a teleport servo: the arm joints are set by IK so that the grip site is at the target with
the gripper pointing down, a grasped bowl moves rigidly with the hand, and then physics runs
(`settle_steps` control steps, more while the fingers move) before the next observation.
"""
from __future__ import annotations

import importlib.util
import math
import sys
import types
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from ..episodes import GRIPPER_CLOSED_AT
from .base import ENVS, Env, EnvConfig, Observation, distractor_set
from .expert import pick_and_place

def quiet_robosuite_import() -> None:
    """robosuite logs 'No private macro file found!' (three lines) on import unless its optional
    robosuite/macros_private.py exists; without one, an empty module (robosuite's defaults, which it
    uses anyway) stands in, so the notice is never issued. A real private macro file is left alone."""
    spec = importlib.util.find_spec("robosuite")          # top-level: locates the package without importing it
    if spec is not None and spec.origin and not (Path(spec.origin).parent / "macros_private.py").exists():
        sys.modules.setdefault("robosuite.macros_private", types.ModuleType("robosuite.macros_private"))


# grip-site axes in the world: z down, x (the fingers' closing axis) along world x, radial to a rim
# grasped on the robot's side of the bowl or on the far side
_DOWN = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])


@dataclass(frozen=True)
class LiberoAppearance:
    """How a LIBERO scene looks: spec['appearance'], i.e. a protocol's train/test_appearance (the paper's
    new-environment test). None keeps the task's own value. Colours are rgb in [0, 1] that multiply the
    surface's texture. Every reset first restores the task's look, so nothing leaks into the next scene."""
    table_material: str | None = None    # a material of the model drawn on the table top instead of its
                                         # own, e.g. 'floorplane' (dark wood planks), 'walls_mat' (plaster)
    table_rgb: tuple | None = None
    wall_rgb: tuple | None = None        # the walls: the background above the table in agentview
    floor_rgb: tuple | None = None       # visible from the viewpoint grid's lower views only
    light_diffuse: float | None = None   # both scene lights (spot lights 3 m above the table; task: 0.8)
    light_ambient: float | None = None   # both scene lights (task: 0)
    light_dir: tuple | None = None       # where both lights point, world frame (task: (0, -0.15, -0.99))

    @classmethod
    def from_spec(cls, spec: dict) -> "LiberoAppearance":
        values = dict(spec.get("appearance", {}))
        names = [f.name for f in fields(cls)]
        unknown = set(values) - set(names)
        if unknown:
            raise ValueError(f"LIBERO appearance has no {sorted(unknown)}; fields: {names}")
        for key in ("table_rgb", "wall_rgb", "floor_rgb", "light_dir"):
            if values.get(key) is None:
                continue
            v = np.asarray(values[key], dtype=np.float64)
            if v.shape != (3,) or not np.isfinite(v).all() or (key == "light_dir" and not v.any()):
                raise ValueError(f"LIBERO appearance {key} needs 3 finite values (a direction: not all 0); "
                                 f"got {values[key]}")
            # MuJoCo draws a textured geom whose rgba is (0.5, 0.5, 0.5, 1) in its material's colour
            if key != "light_dir" and (v.min() < 0 or v.max() > 1 or (v == 0.5).all()):
                raise ValueError(f"LIBERO appearance {key} needs rgb in [0, 1], not (0.5, 0.5, 0.5) "
                                 f"(MuJoCo reads that as 'no tint'); got {values[key]}")
            values[key] = tuple(float(x) for x in (v / np.linalg.norm(v) if key == "light_dir" else v))
        for key in ("light_diffuse", "light_ambient"):
            if values.get(key) is not None and not 0 <= values[key] <= 1:
                raise ValueError(f"LIBERO appearance {key} needs a level in [0, 1], got {values[key]}")
        return cls(**values)


@dataclass
class LiberoConfig(EnvConfig):
    type: str = "libero"
    suite: str = "libero_spatial"
    task_id: int = 0
    camera: str = "agentview"
    msaa: bool = False                   # 4x multisampling: ~3x slower CPU rendering
    reflections: bool = False            # table reflections: slower, and not in the features we need
    render_parked: bool = False          # draw parked objects: they are out of view (same frames), but CPU
                                         # rendering still pays for their triangles (~10 ms per 128² frame)
    fps: float = 10.0
    init_state: int = 0                  # LIBERO init state grid scenes start from (spec init_state overrides)
    bowl: str = "akita_black_bowl_1_main"
    plate: str = "plate_1_main"
    table_geom: str = "table_collision"  # support_z = top of this geom
    table_visual: str = "table_visual"   # appearance: the drawn table top (table_material, table_rgb)
    floor_geom: str = "floor"            # appearance: floor_rgb
    wall_material: str = "walls_mat"     # appearance: every geom drawn with it takes wall_rgb
    grid_center: list[float] = field(default_factory=lambda: [-0.105, 0.0])   # world xy of grid (0, 0)
    grid_yaw: float = 180.0              # degrees, grid frame -> world about +z
    plate_xy: list[float] = field(default_factory=lambda: [0.315, -0.38])     # grid frame: world (-0.42, 0.38)
    look_at: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])     # grid frame, z above table
    distractor_bodies: list[str] = field(default_factory=lambda: [
        "glazed_rim_porcelain_ramekin_1_main", "cookies_1_main", "akita_black_bowl_2_main"])
    val_distractor_bodies: list[str] = field(default_factory=list)   # clutter of validation scenes (spec
                                         # distractor_set 'val'), objects unlike distractor_bodies; task 0's
                                         # scene has no more small objects, so none by default
    park_bodies: list[str] = field(default_factory=lambda: ["wooden_cabinet_1_main", "flat_stove_1_main"])
    park_xy: list[float] = field(default_factory=lambda: [2.0, 0.0])          # world, behind the camera
    settle_steps: int = 1                # 20 Hz control steps of physics after each teleport
    gripper_steps: int = 12              # at most this many more while the fingers move
    grasp_depth: float = 0.02            # expert: grip site this far below the bowl rim
    finger_reach: float = 0.045          # expert: the open finger pads' outer faces from the grip site; a
                                         # distractor body nearer the robot-side grasp than this moves the
                                         # grasp to the far side of the rim
    lift_height: float = 0.16            # expert: carry height above the table
    place_height: float = 0.07           # expert: release height of the grip site above the table

    def validate(self) -> None:
        if len(self.grid_center) != 2 or len(self.plate_xy) != 2 or len(self.look_at) != 3:
            raise ValueError("env.grid_center and env.plate_xy need 2 values, env.look_at 3")


class LiberoEnv(Env):
    def __init__(self, cfg: LiberoConfig):
        from .libero_sim import LiberoSim
        self.cfg = cfg
        self.sim = LiberoSim(cfg.suite, cfg.task_id, cfg.camera, cfg.image_height, cfg.image_width,
                             cfg.msaa, cfg.reflections)
        self.task, self.fps, self.camera_names = self.sim.language, cfg.fps, [cfg.camera]
        self.support_z = float(self.sim.d.geom_xpos[self.sim.m.geom(cfg.table_geom).id][2]
                               + self.sim.m.geom_size[self.sim.m.geom(cfg.table_geom).id][2])
        self.bowl_radius = self.sim.body_radius(cfg.bowl)
        yaw = math.radians(cfg.grid_yaw)
        self._rot = np.array([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
        self.base_camera = self.sim.camera()
        self.gripper, self.held = 0.0, False

    def to_world(self, xy) -> np.ndarray:
        """Grid-frame xy (metres) -> world xy."""
        return np.asarray(self.cfg.grid_center, dtype=np.float64) + self._rot @ np.asarray(xy, dtype=np.float64)

    # -- state ------------------------------------------------------------------------------
    def reset(self, spec: dict | None = None, seed: int | None = None) -> Observation:
        c, s = self.cfg, self.sim
        spec = dict(spec or {})
        look = LiberoAppearance.from_spec(spec)           # before any change: a bad field leaves the scene alone
        s.reset(spec.get("init_state", c.init_state if "bowl_xy" in spec else (seed or 0) % len(s.init_states)))
        s.set_look(look, c.table_visual, c.floor_geom, c.wall_material)   # the model outlives resets: every time
        if "bowl_xy" in spec:
            self._arrange(spec)
        theta, phi = float(spec.get("theta", 0.0)), float(spec.get("phi", 0.0))
        look_at = np.r_[self.to_world(c.look_at[:2]), self.support_z + c.look_at[2]]
        s.set_camera(self.base_camera.orbit(look_at, theta, phi) if theta else None)
        self.gripper, self.held = 0.0, False
        s.teleport(s.ee()[0], _DOWN)                      # the canonical top-down hand
        s.hold(-1.0, 5)                                   # objects settle (they start ~cm above the table)
        return self.observe()

    def _arrange(self, spec: dict) -> None:
        c, s, z = self.cfg, self.sim, self.support_z
        s.place(c.bowl, [*self.to_world(spec["bowl_xy"]), z], [1, 0, 0, 0])
        s.place(c.plate, [*self.to_world(spec.get("plate_xy", c.plate_xy)), z], [1, 0, 0, 0])
        clutter = [np.asarray(d, dtype=np.float64) for d in spec.get("distractors", [])]
        which = distractor_set(spec, "libero")
        name = "val_distractor_bodies" if which == "val" else "distractor_bodies"
        bodies = getattr(c, name)
        if len(clutter) > len(bodies):
            raise ValueError(f"LIBERO scene has {len(bodies)} objects in env.{name}, spec "
                             f"(distractor_set {which!r}) asks for {len(clutter)}")
        for body, xy in zip(bodies, clutter):
            s.place(body, [*self.to_world(xy), z + 0.01])
        parked = [b for b in c.distractor_bodies + c.val_distractor_bodies if b not in bodies[:len(clutter)]] + c.park_bodies
        for i, body in enumerate(parked):         # out of view, 0.5 m apart so that nothing touches
            s.place(body, [c.park_xy[0], c.park_xy[1] + 0.5 * i, 0.1 if s.free_joint_of(body) is not None else 0.0])
            if not c.render_parked:
                s.hide(body)
        s.forward()

    def step(self, target_xyz, gripper: float) -> Observation:
        target = np.asarray(target_xyz, dtype=np.float64)
        if target.shape != (3,) or not np.isfinite(target).all() or not np.isfinite(gripper):
            raise ValueError(f"libero step needs a finite (3,) target and gripper, got {target_xyz}, {gripper}")
        s, c = self.sim, self.cfg
        target = np.r_[target[:2], max(target[2], self.support_z + 0.005)]
        if self.held:                                     # carry the bowl rigidly through the teleport
            ee0, _ = s.ee()
            pos, quat = s.free_pose(c.bowl)
            s.teleport(target, _DOWN)
            s.place(c.bowl, pos + s.ee()[0] - ee0, quat)
            s.forward()
        else:
            s.teleport(target, _DOWN)
        grip = float(np.clip(gripper, 0.0, 1.0))
        command = 2.0 * grip - 1.0                        # LIBERO: -1 opens, +1 closes
        s.hold(command, c.settle_steps)
        if (grip >= GRIPPER_CLOSED_AT) != (self.gripper >= GRIPPER_CLOSED_AT):         # fingers move: run until they stop
            for _ in range(c.gripper_steps):
                before = s.finger_qpos()
                s.hold(command, 1)
                if np.abs(s.finger_qpos() - before).max() < 2e-4:
                    break
        self.gripper = grip
        self.held = grip >= GRIPPER_CLOSED_AT and (self.held or s.grasping(c.bowl))   # carried until released
        return self.observe()

    def success(self) -> bool:
        return self.sim.success()

    def holding(self) -> bool:
        return self.held

    def task_error(self) -> float:
        return float(np.linalg.norm(self.sim.body_pos(self.cfg.bowl)[:2] - self.sim.body_pos(self.cfg.plate)[:2]))

    def expert_waypoints(self, rng: np.random.Generator):
        """Rim grasp on the robot's side of the bowl (on the far side when another object crowds it), lift,
        carry over the plate, lower, release. The place target uses the bowl's offset in the hand measured
        after the grasp (the bowl shifts while the fingers close), so it is computed when the lift waypoint
        is reached."""
        c, s, z = self.cfg, self.sim, self.support_z
        bowl = s.body_pos(c.bowl)
        rim_top = s.top_z(c.bowl)
        grasp = np.r_[bowl[0] + self._rim_side(bowl, rim_top - c.grasp_depth) * self.bowl_radius,
                      bowl[1] + rng.normal(0, 0.003), rim_top - c.grasp_depth]
        lift = z + c.lift_height + rng.uniform(-0.01, 0.01)

        def over_plate():
            offset = s.body_pos(c.bowl)[:2] - s.ee()[0][:2]
            return s.body_pos(c.plate)[:2] - offset + rng.normal(0, 0.003, 2)

        return pick_and_place(grasp, rim_top + 0.06, lift, over_plate, z + c.place_height)

    def _rim_side(self, bowl: np.ndarray, grasp_z: float) -> float:
        """-1: grasp the rim on the robot's side (x, the fingers' closing axis); +1: the far side, when a
        distractor body is within finger_reach of the robot-side grasp, farther from the far one, and the arm
        reaches it (not at the grid's far edge). LIBERO's own layouts put the ramekin right behind the bowl,
        where the outer finger would come down on it."""
        c, s = self.cfg, self.sim

        def room(side: float) -> float:
            grasp = bowl[:2] + [side * self.bowl_radius, 0.0]
            return min((np.linalg.norm(s.body_pos(b)[:2] - grasp) - s.body_radius(b)
                        for b in c.distractor_bodies + c.val_distractor_bodies),
                       default=np.inf)

        crowded = room(-1.0) < min(c.finger_reach, room(1.0))
        return 1.0 if crowded and s.reaches(np.r_[bowl[0] + self.bowl_radius, bowl[1], grasp_z], _DOWN) else -1.0

    # -- observation ------------------------------------------------------------------------
    def observe(self) -> Observation:
        s = self.sim
        return Observation({self.cfg.camera: s.render()}, {self.cfg.camera: s.camera()}, s.ee()[0],
                           self.gripper, self.support_z)

    def close(self) -> None:
        self.sim.close()


@ENVS.register("libero", LiberoConfig)
def build_libero(cfg: LiberoConfig) -> LiberoEnv:
    return LiberoEnv(cfg)
