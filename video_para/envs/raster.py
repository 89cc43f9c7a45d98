"""Exact software ray caster for scenes of simple primitives, driven by a `Camera`.

Why not MuJoCo GL: on this CPU-only machine it costs ~70-100 ms per 128x128 frame; casting one ray
per pixel against a dozen analytic primitives costs ~1-2 ms in numpy and is consistent with the
camera model (and so with the labels) by construction.

Primitives: horizontal discs (table, plate, bowl interior; optionally checkered), vertical capped
cylinders (bowl wall, objects, wrist) and spheres (fingers). Each has an RGB colour and an integer tag;
`render` returns the image and the tag of every pixel (e.g. to mask the robot). Lighting: one
directional light plus ambient, scaled by a light level.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry import Camera

@dataclass
class Disc:                     # horizontal disc (or rectangle when half_extent is given) at height z
    center: tuple
    z: float
    radius: float
    color: tuple
    tag: int = 0
    half_extent: tuple | None = None
    checker: float = 0.0        # side (m) of checkerboard squares in color2 (a texture); 0: plain
    color2: tuple = (0, 0, 0)


@dataclass
class Cylinder:                 # vertical cylinder side between z0 and z1
    center: tuple
    z0: float
    z1: float
    radius: float
    color: tuple
    tag: int = 0


@dataclass
class Sphere:
    center: tuple
    radius: float
    color: tuple
    tag: int = 0


def _aabb(p) -> np.ndarray:
    """(2, 3) world bounding box of a primitive."""
    if isinstance(p, Sphere):
        c, r = np.asarray(p.center), p.radius
        return np.stack([c - r, c + r])
    ex = p.half_extent if isinstance(p, Disc) and p.half_extent else (p.radius, p.radius)
    z0, z1 = (p.z, p.z) if isinstance(p, Disc) else (p.z0, p.z1)
    return np.array([[p.center[0] - ex[0], p.center[1] - ex[1], z0], [p.center[0] + ex[0], p.center[1] + ex[1], z1]])


class Rays:
    """Per-pixel rays of a camera (computed once per camera pose)."""

    def __init__(self, camera: Camera):
        u, v = np.meshgrid(np.arange(camera.width) + 0.5, np.arange(camera.height) + 0.5)
        origin, d = camera.rays(np.stack([u, v], -1).reshape(-1, 2))
        self.camera, self.o = camera, origin[0]
        self.d = (d / np.linalg.norm(d, axis=-1, keepdims=True)).reshape(camera.height, camera.width, 3)
        self.shape = (camera.height, camera.width)

    def window(self, p) -> tuple[slice, slice]:
        """Image rows/cols that can see primitive p (its projected bounding box, 1 px margin);
        the whole image when part of the box is behind the camera."""
        lo, hi = _aabb(p)
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        pix, depth = self.camera.project_with_depth(corners)
        H, W = self.shape
        if (depth <= 1e-6).any():
            return slice(0, H), slice(0, W)
        c0, r0 = np.floor(pix.min(0)).astype(int) - 1
        c1, r1 = np.ceil(pix.max(0)).astype(int) + 1
        return slice(max(r0, 0), max(min(r1, H), 0)), slice(max(c0, 0), max(min(c1, W), 0))


class _Block:
    def __init__(self, o, d):
        self.o, self.d = o, d


def _hit_disc(r: Rays, p: Disc):
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (p.z - r.o[2]) / r.d[:, 2]
    x = r.o[0] + t * r.d[:, 0] - p.center[0]
    y = r.o[1] + t * r.d[:, 1] - p.center[1]
    inside = (np.abs(x) <= p.half_extent[0]) & (np.abs(y) <= p.half_extent[1]) if p.half_extent \
        else x * x + y * y <= p.radius ** 2
    t = np.where(inside & (t > 0), t, np.inf)
    n = np.broadcast_to(np.array([0.0, 0.0, 1.0 if r.o[2] > p.z else -1.0]), r.d.shape)
    return t, n


def _hit_cylinder(r: Rays, p: Cylinder):
    ox, oy = r.o[0] - p.center[0], r.o[1] - p.center[1]
    a = r.d[:, 0] ** 2 + r.d[:, 1] ** 2
    b = 2 * (ox * r.d[:, 0] + oy * r.d[:, 1])
    c = ox * ox + oy * oy - p.radius ** 2
    disc = b * b - 4 * a * c
    sq = np.sqrt(np.maximum(disc, 0))
    best = np.full(len(a), np.inf)
    for t in ((-b - sq) / (2 * a + 1e-12), (-b + sq) / (2 * a + 1e-12)):   # outer wall, then inner wall
        z = r.o[2] + t * r.d[:, 2]
        ok = (disc >= 0) & (t > 0) & (z >= p.z0) & (z <= p.z1) & (t < best)
        best = np.where(ok, t, best)
    hit = r.o + best[:, None] * r.d
    n = np.stack([hit[:, 0] - p.center[0], hit[:, 1] - p.center[1], np.zeros(len(a))], -1) / p.radius
    n = np.where((np.sum(n * r.d, -1) > 0)[:, None], -n, n)          # inner wall faces the ray
    return best, n


def _hit_sphere(r: Rays, p: Sphere):
    oc = r.o - np.asarray(p.center)
    b = r.d @ oc
    c = oc @ oc - p.radius ** 2
    disc = b * b - c
    t = -b - np.sqrt(np.maximum(disc, 0))
    t = np.where((disc >= 0) & (t > 0), t, np.inf)
    hit = r.o + np.where(np.isfinite(t), t, 0)[:, None] * r.d
    return t, (hit - p.center) / p.radius


_HIT = {Disc: _hit_disc, Cylinder: _hit_cylinder, Sphere: _hit_sphere}


def _albedo(p, o: np.ndarray, d: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Surface colour where rays o + t d hit p: its colour, or its checkerboard (world-aligned squares)."""
    if not (isinstance(p, Disc) and p.checker):
        return np.asarray(p.color, dtype=np.float64)
    xy = o[:2] + t[:, None] * d[:, :2]
    odd = np.floor(xy / p.checker).sum(1) % 2 == 1
    return np.where(odd[:, None], np.asarray(p.color2, dtype=np.float64), np.asarray(p.color, dtype=np.float64))


def render(rays: Rays, primitives: list, background=(60, 60, 70), light=(0.3, -0.4, 0.87),
           light_level: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (image (H, W, 3) uint8, tags (H, W) int; -1 where the background shows). `light`: the
    direction towards the light (world frame); `light_level` scales all shading."""
    light = np.asarray(light, dtype=np.float64) / np.linalg.norm(light)
    H, W = rays.shape
    depth = np.full((H, W), np.inf)
    color = np.empty((H, W, 3))
    color[:] = background
    tags = np.full((H, W), -1, dtype=np.int16)
    for p in primitives:
        rs, cs = rays.window(p)                 # only the pixels whose rays can hit p
        block = _Block(rays.o, rays.d[rs, cs].reshape(-1, 3))
        if block.d.shape[0] == 0:
            continue
        t, n = _HIT[type(p)](block, p)
        closer = t < depth[rs, cs].reshape(-1)
        if not closer.any():
            continue
        shade = light_level * (0.55 + 0.45 * np.clip(n[closer] @ light, 0, 1))
        d_blk, c_blk, g_blk = depth[rs, cs].reshape(-1), color[rs, cs].reshape(-1, 3), tags[rs, cs].reshape(-1)
        d_blk[closer] = t[closer]
        c_blk[closer] = _albedo(p, block.o, block.d[closer], t[closer]) * shade[:, None]
        g_blk[closer] = p.tag
        shape = depth[rs, cs].shape
        depth[rs, cs], color[rs, cs], tags[rs, cs] = d_blk.reshape(shape), c_blk.reshape(shape + (3,)), g_blk.reshape(shape)
    return np.clip(color, 0, 255).astype(np.uint8), tags
