"""Pinhole camera geometry (OpenCV convention) and value binning.

Conventions relied on everywhere else:
  * camera axes: x right, y down, z forward; ``world_from_cam`` is a 4x4 rigid transform;
  * pixels are (u, v) = (column, row), continuous, with pixel centres at integer + 0.5;
  * ``lift`` intersects the ray through a pixel with the horizontal plane z = support_z + height.

Projection, lifting and binning accept numpy arrays or torch tensors (batched over leading dims) and
return the kind of the points, pixels or values they are given (the camera's matrices are converted to
it). `look_at` and `spherical` build numpy cameras (`intrinsics` a numpy K); `orbit` takes one
unbatched camera, numpy or torch, and returns a numpy camera; `scaled` and `cropped` keep the camera's
kind; `Camera.torch` converts. A camera may itself be batched: K (..., 3, 3), world_from_cam
(..., 4, 4); its batch dims then lead the point/pixel arrays.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

_EPS = 1e-9


def _like(x: Any, ref: Any):
    """Convert x to the array kind (and dtype/device) of ref."""
    if isinstance(ref, torch.Tensor):
        return torch.as_tensor(x, dtype=ref.dtype, device=ref.device)
    return np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float64)


def _stack(xs, ref):
    return torch.stack(xs, dim=-1) if isinstance(ref, torch.Tensor) else np.stack(xs, axis=-1)


def _matvec(m, v):
    return (m @ v[..., None])[..., 0]


def _count(mask) -> int:
    return int(mask.sum().item() if isinstance(mask, torch.Tensor) else mask.sum())


def switch_mujoco_axes(R) -> np.ndarray:
    """A camera rotation (world_from_cam[:3, :3]) with its axes switched between OpenCV's (x right,
    y down, looking along +z) and MuJoCo's (x right, y up, looking along -z): y and z flip, so the
    switch is its own inverse."""
    return np.asarray(R, dtype=np.float64) @ np.diag([1.0, -1.0, -1.0])


@dataclass
class Camera:
    """Pinhole camera: intrinsics K, extrinsics world_from_cam, image size in pixels."""

    K: Any
    world_from_cam: Any
    width: int
    height: int

    def __post_init__(self):
        for name in ("K", "world_from_cam"):       # lists (e.g. from JSON) become arrays
            if not isinstance(getattr(self, name), (np.ndarray, torch.Tensor)):
                setattr(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        K, T = (np.asarray(_like(m, np.zeros(0))) for m in (self.K, self.world_from_cam))
        for name, m, n in (("K", K, 3), ("world_from_cam", T, 4)):
            if m.shape[-2:] != (n, n):
                raise ValueError(f"Camera {name} must be ({n}, {n}) (or batched (..., {n}, {n})), got shape {m.shape}")
            if not np.isfinite(m).all():
                raise ValueError(f"Camera {name} has {int((~np.isfinite(m)).sum())} NaN/Inf entries")
        if K.shape[:-2] != T.shape[:-2]:
            raise ValueError(f"Camera K {K.shape} and world_from_cam {T.shape} have different batch shapes")
        if min(self.width, self.height) < 1:
            raise ValueError(f"Camera width and height must be positive, got {self.width}x{self.height}")
        if K.size and (np.abs(K[..., 2, :] - [0, 0, 1]).max() > 1e-9 or (K[..., 0, 0] <= 0).any()
                       or (K[..., 1, 1] <= 0).any()):
            raise ValueError(f"Camera K must be [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0, got {K.tolist()}")
        if T.size and np.abs(T[..., 3, :] - [0, 0, 0, 1]).max() > 1e-6:
            raise ValueError(f"Camera world_from_cam bottom row must be [0, 0, 0, 1], got {T[..., 3, :].tolist()}")
        R = T[..., :3, :3]
        err = np.abs(R @ np.swapaxes(R, -1, -2) - np.eye(3)).max() if R.size else 0.0
        if err > 1e-4:
            raise ValueError(f"Camera world_from_cam is not a rigid transform: its rotation is not orthonormal "
                             f"(|R R^T - I| = {err:.2e})")
        if R.size and (np.linalg.det(R) < 0).any():
            raise ValueError("Camera world_from_cam is a reflection (det R = -1), not a rotation: one axis is "
                             "flipped (OpenCV camera axes: x right, y down, z forward)")

    # -- batching helpers ---------------------------------------------------------------
    @property
    def batch_shape(self) -> tuple:
        return tuple(self.K.shape[:-2])

    def _expand(self, m, x, trailing: int):
        """Reshape camera matrix m (*batch, r, c) to broadcast against x (*batch, ..., trailing)."""
        m = _like(m, x)
        extra = x.ndim - 1 - len(self.batch_shape)
        if extra < 0:
            raise ValueError(f"points/pixels of shape {tuple(x.shape)} lack the camera batch dims {self.batch_shape}")
        return m.reshape(tuple(self.batch_shape) + (1,) * extra + tuple(m.shape[-2:]))

    # -- projection ---------------------------------------------------------------------
    def world_to_cam(self, points):
        T = self._expand(self.world_from_cam, points, 3)
        R, t = T[..., :3, :3], T[..., :3, 3]
        return _matvec(R.swapaxes(-1, -2), points - t)

    def project_with_depth(self, points):
        """Return (pixels (...,2), depth (...)) without checking visibility."""
        pc = self.world_to_cam(points)
        z = pc[..., 2]
        uvw = _matvec(self._expand(self.K, points, 3), pc)
        # keep the division finite for points on the camera plane; project() rejects them anyway
        denom = torch.where(z.abs() < _EPS, torch.full_like(z, _EPS), z) if isinstance(z, torch.Tensor) \
            else np.where(np.abs(z) < _EPS, _EPS, z)
        return _stack([uvw[..., 0] / denom, uvw[..., 1] / denom], points), z

    def project(self, points):
        """World points (...,3) -> pixels (...,2). Points at or behind the camera are an error."""
        pix, z = self.project_with_depth(points)
        behind = z <= _EPS
        if behind.any():
            raise ValueError(f"{_count(behind)} of {z.numel() if hasattr(z, 'numel') else z.size} "
                             "points are at or behind the camera (depth <= 0); they have no pixel")
        return pix

    def in_image(self, pixels):
        """Boolean mask: pixel lies inside [0, width) x [0, height)."""
        u, v = pixels[..., 0], pixels[..., 1]
        return (u >= 0) & (u < self.width) & (v >= 0) & (v < self.height)

    # -- lifting ------------------------------------------------------------------------
    def rays(self, pixels):
        """Ray origins (...,3) and world directions (...,3) through pixels (...,2)."""
        K = self._expand(self.K, pixels, 2)
        T = self._expand(self.world_from_cam, pixels, 2)
        ones = pixels[..., :1] * 0 + 1
        hom = torch.cat([pixels, ones], -1) if isinstance(pixels, torch.Tensor) else np.concatenate([pixels, ones], -1)
        d_cam = _matvec(torch.linalg.inv(K) if isinstance(K, torch.Tensor) else np.linalg.inv(K), hom)
        d_world = _matvec(T[..., :3, :3], d_cam)
        origin = T[..., :3, 3] + 0 * d_world
        return origin, d_world

    def lift(self, pixels, heights, support_z=0.0):
        """Pixels (...,2) + heights above the support plane (...) -> world points (...,3).

        The point is where the camera ray through the pixel meets z = support_z + height. A ray
        parallel to that plane, or meeting it behind the camera, raises ValueError (never NaN).
        """
        for name, a in (("pixels", pixels), ("heights", heights), ("support_z", support_z)):
            bad = ~(torch.isfinite(a) if isinstance(a, torch.Tensor) else np.isfinite(np.asarray(a, dtype=np.float64)))
            if bad.any():
                raise ValueError(f"lift: {_count(bad)} of the {name} are NaN/Inf")
        origin, d = self.rays(pixels)
        plane_z = _like(support_z, d) + _like(heights, d)
        dz = d[..., 2]
        parallel = dz.abs() < 1e-9 if isinstance(dz, torch.Tensor) else np.abs(dz) < 1e-9
        if parallel.any():
            raise ValueError(f"{_count(parallel)} pixel rays are parallel to the plane z = support_z + height "
                             "(the pixel is on the horizon); they cannot be lifted")
        s = (plane_z - origin[..., 2]) / dz
        behind = s <= 0
        if behind.any():
            raise ValueError(f"{_count(behind)} pixel rays meet the plane z = support_z + height behind the camera "
                             "(pixel above the horizon, or camera below the plane)")
        return origin + s[..., None] * d

    # -- construction and transforms ----------------------------------------------------
    @staticmethod
    def intrinsics(fov_y_deg: float, width: int, height: int) -> np.ndarray:
        """K for a centred pinhole with square pixels and the given vertical field of view."""
        f = 0.5 * height / math.tan(math.radians(fov_y_deg) / 2)
        return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=np.float64)

    @classmethod
    def look_at(cls, eye, target, K, width: int, height: int, up=(0.0, 0.0, 1.0)) -> "Camera":
        """Camera at `eye` whose optical axis points at `target`; image 'up' is towards `up`."""
        eye, target, up = (np.asarray(a, dtype=np.float64) for a in (eye, target, up))
        z = target - eye
        if np.linalg.norm(z) < _EPS:
            raise ValueError("look_at: eye and target coincide")
        z = z / np.linalg.norm(z)
        x = np.cross(z, up)
        if np.linalg.norm(x) < 1e-6:  # looking straight along `up`: pick any perpendicular
            x = np.cross(z, [0.0, 1.0, 0.0] if abs(z[1]) < 0.9 else [1.0, 0.0, 0.0])
        x = x / np.linalg.norm(x)
        y = np.cross(z, x)  # OpenCV: y points down in the image
        T = np.eye(4)
        T[:3, :3] = np.stack([x, y, z], axis=1)
        T[:3, 3] = eye
        return cls(np.asarray(K, dtype=np.float64), T, width, height)

    @classmethod
    def spherical(cls, target, radius: float, elevation_deg: float, azimuth_deg: float, K,
                  width: int, height: int) -> "Camera":
        """Camera on a sphere around `target`: elevation above the horizontal, azimuth about +z from +x."""
        el, az = math.radians(elevation_deg), math.radians(azimuth_deg)
        offset = radius * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        return cls.look_at(np.asarray(target, dtype=np.float64) + offset, target, K, width, height)

    def orbit(self, target, theta_deg: float, phi_deg: float) -> "Camera":
        """Viewpoint perturbation of the paper's grid: rotate the camera about `target` by theta,
        tilting the line of sight towards direction phi (measured in the image plane from +x, the
        image's right, towards +y, down). theta = 0 returns the same camera for every phi."""
        T = np.asarray(_like(self.world_from_cam, np.zeros(0)))
        target = np.asarray(target, dtype=np.float64)
        phi = math.radians(phi_deg)
        x_w, y_w = T[:3, 0], T[:3, 1]
        axis = -math.sin(phi) * x_w + math.cos(phi) * y_w  # perpendicular to the tilt direction
        R = _axis_angle(axis, math.radians(theta_deg))
        out = np.eye(4)
        out[:3, :3] = R @ T[:3, :3]
        out[:3, 3] = target + R @ (T[:3, 3] - target)
        return Camera(np.asarray(_like(self.K, np.zeros(0))), out, self.width, self.height)

    def scaled(self, sx: float, sy: float, width: int, height: int) -> "Camera":
        """Camera for the image resized by (sx, sy) (pixel-centre convention kept exact)."""
        S = np.diag([sx, sy, 1.0])
        K = _like(S, self.K) @ self.K if isinstance(self.K, torch.Tensor) else S @ self.K
        return Camera(K, self.world_from_cam, width, height)

    def cropped(self, left: float, top: float, width: int, height: int) -> "Camera":
        """Camera for the sub-image starting at pixel (left, top)."""
        K = self.K.clone() if isinstance(self.K, torch.Tensor) else np.array(self.K, dtype=np.float64)
        K[..., 0, 2] -= left
        K[..., 1, 2] -= top
        return Camera(K, self.world_from_cam, width, height)

    def to_dict(self) -> dict:
        return {"K": np.asarray(_like(self.K, np.zeros(0))).tolist(),
                "world_from_cam": np.asarray(_like(self.world_from_cam, np.zeros(0))).tolist(),
                "width": int(self.width), "height": int(self.height)}

    @classmethod
    def from_dict(cls, d: dict) -> "Camera":
        missing = {"K", "world_from_cam", "width", "height"} - set(d)
        if missing:
            raise KeyError(f"camera calibration lacks {sorted(missing)}")
        return cls(np.asarray(d["K"], dtype=np.float64), np.asarray(d["world_from_cam"], dtype=np.float64),
                   int(d["width"]), int(d["height"]))

    def torch(self, dtype=torch.float32, device=None) -> "Camera":
        return Camera(torch.as_tensor(np.asarray(_like(self.K, np.zeros(0))), dtype=dtype, device=device),
                      torch.as_tensor(np.asarray(_like(self.world_from_cam, np.zeros(0))), dtype=dtype, device=device),
                      self.width, self.height)


def _axis_angle(axis, angle: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


class Bins:
    """Uniform bins over [low, high]: encode values to indices, decode indices to bin centres.

    Values outside the range are clipped to the end bins with a warning that counts them: a
    target silently squashed into the last bin is a bug in the statistics, not a detail.
    """

    def __init__(self, low: float, high: float, n: int):
        if not (math.isfinite(low) and math.isfinite(high)) or high <= low or n < 1:
            raise ValueError(f"Bins need finite low < high and n >= 1, got ({low}, {high}, {n})")
        self.low, self.high, self.n = float(low), float(high), int(n)
        self.width = (self.high - self.low) / self.n
        self.clipped = 0  # running count, for reports

    def encode(self, values):
        outside = (values < self.low) | (values > self.high)
        k = _count(outside)
        if k:
            self.clipped += k
            warnings.warn(f"Bins[{self.low:.4g}, {self.high:.4g}]: {k} value(s) outside the range were clipped "
                          f"({self.clipped} so far)", stacklevel=2)
        idx = (values - self.low) / self.width
        if isinstance(values, torch.Tensor):
            return idx.floor().long().clamp(0, self.n - 1)
        return np.clip(np.floor(idx), 0, self.n - 1).astype(np.int64)

    def decode(self, indices):
        return self.low + (indices + 0.5) * self.width

    def to_dict(self) -> dict:
        return {"low": self.low, "high": self.high, "n": self.n}

    @classmethod
    def from_dict(cls, d: dict) -> "Bins":
        return cls(d["low"], d["high"], d["n"])

    def __repr__(self) -> str:
        return f"Bins(low={self.low:.4g}, high={self.high:.4g}, n={self.n})"


def pixel_cells(pixels: torch.Tensor, image_size, grid_size, what: str, remedy: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, col) of the cell of an (h, w) grid over the (H, W) image that holds each pixel (..., 2).
    A pixel outside the image (or not finite) is a ValueError counting them as `what` (e.g. "target
    pixel(s)") and ending with `remedy`: a clamp would move it to a wrong cell silently."""
    (H, W), (h, w) = image_size, grid_size
    u, v = pixels[..., 0], pixels[..., 1]
    outside = (u < 0) | (u >= W) | (v < 0) | (v >= H) | ~torch.isfinite(pixels).all(-1)
    if outside.any():
        raise ValueError(f"{int(outside.sum())} {what} outside the {W}x{H} image (e.g. {pixels[outside][0].tolist()}); "
                         f"{remedy}")
    # the clamp only absorbs float rounding of a pixel just inside the last cell
    col = (u * (w / W)).floor().long().clamp(0, w - 1)
    row = (v * (h / H)).floor().long().clamp(0, h - 1)
    return row, col
