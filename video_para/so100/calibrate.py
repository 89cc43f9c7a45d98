"""Camera calibration into the robot base frame, saved as the JSON that recording and deployment read.

    python -m video_para.so100.calibrate intrinsics --images 'calib/*.png' --pattern 9x6 --square 0.024 \\
        --out intrinsics.json
    python -m video_para.so100.calibrate extrinsics --intrinsics intrinsics.json --points points.json \\
        --out camera.json

Intrinsics: OpenCV checkerboard calibration of a PINHOLE (distortion fixed to zero, because every
consumer -- Camera.project/lift, the policy -- is a pinhole; the RMS error shows whether that fits).
Extrinsics: move the gripper to several poses, note the joint readings (LeRobot `<motor>.pos`, degrees)
and the pixel of the gripper tip in the camera image; FK gives the 3D points in the base frame and
solvePnP the camera pose. points.json:

    {"width": 640, "height": 480,
     "pairs":   [{"joints": {"shoulder_pan.pos": 3.1, ...}, "pixel": [u, v]}, ...],   # or "xyz": [x, y, z]
     "support": [{"joints": {...}}, ...]}        # the gripper tip touching the table; or "support_z": 0.0

Refused (exit status 1, nothing written): fewer than `--min-points` pairs, a mean reprojection error
above `--max-error` px, points behind the camera, or too few detected checkerboards.
"""
from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path

import numpy as np

from ..geometry import Camera

FORMAT = "video_para.so100.camera/1"


class CalibrationError(ValueError):
    """A calibration that must not be used; the message says why."""


def _cv2():
    try:
        import cv2
    except ImportError as e:
        raise ImportError("camera calibration needs OpenCV: pip install -e '.[so100]'") from e
    return cv2


def _pinhole_flags(cv2) -> int:
    return (cv2.CALIB_ZERO_TANGENT_DIST | cv2.CALIB_FIX_K1 | cv2.CALIB_FIX_K2 | cv2.CALIB_FIX_K3)


def intrinsics_from_checkerboards(images: list[np.ndarray], pattern: tuple[int, int], square: float,
                                  min_views: int = 5, max_error: float = 1.0) -> tuple[np.ndarray, float, int]:
    """K (3x3, our pixel convention), RMS reprojection error (px) and the number of boards used, from
    checkerboard images (`pattern` = inner corners per row x per column, `square` = edge in metres)."""
    cv2 = _cv2()
    board = np.zeros((pattern[0] * pattern[1], 3), np.float32)
    board[:, :2] = np.mgrid[0:pattern[0], 0:pattern[1]].T.reshape(-1, 2) * square
    obj, img, size = [], [], None
    for im in images:
        gray = cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) if im.ndim == 3 else im
        size = gray.shape[::-1]
        found, corners = cv2.findChessboardCorners(gray, pattern)
        if found:
            corners = cv2.cornerSubPix(gray, corners, (5, 5), (-1, -1),
                                       (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-4))
            obj.append(board)
            img.append(corners)
    if len(obj) < min_views:
        raise CalibrationError(f"checkerboard {pattern[0]}x{pattern[1]} found in {len(obj)} of {len(images)} "
                               f"images; at least {min_views} needed")
    rms, K, *_ = cv2.calibrateCamera(obj, img, size, None, None, flags=_pinhole_flags(cv2))
    if rms > max_error:
        raise CalibrationError(f"intrinsics RMS reprojection error {rms:.2f} px exceeds {max_error} px")
    K[:2, 2] += 0.5                 # OpenCV puts pixel centres at integers, we at integer + 0.5
    return K, float(rms), len(obj)


def extrinsics_from_points(points: np.ndarray, pixels: np.ndarray, K: np.ndarray, width: int, height: int,
                           min_points: int = 6, max_error: float = 2.0) -> tuple[Camera, np.ndarray]:
    """The camera (K, world_from_cam in the base frame) from 3D base-frame points and their pixels
    (our convention: pixel centres at +0.5), and each point's reprojection error in pixels."""
    cv2 = _cv2()
    points, pixels = np.asarray(points, np.float64).reshape(-1, 3), np.asarray(pixels, np.float64).reshape(-1, 2)
    if len(points) != len(pixels):
        raise CalibrationError(f"{len(points)} points but {len(pixels)} pixels")
    if len(points) < min_points:
        raise CalibrationError(f"{len(points)} point/pixel pairs; at least {min_points} needed "
                               "(spread over the workspace, at several heights)")
    if not (np.isfinite(points).all() and np.isfinite(pixels).all()):
        raise CalibrationError("a point or pixel is NaN/Inf")
    # K and the pixels share our convention, so the pinhole equations hold as they are
    ok, rvec, tvec = cv2.solvePnP(points, pixels, K, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        raise CalibrationError("solvePnP found no camera pose for these points")
    rvec, tvec = cv2.solvePnPRefineLM(points, pixels, K, None, rvec, tvec)
    R, _ = cv2.Rodrigues(rvec)
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R.T, (-R.T @ tvec).ravel()
    camera = Camera(np.asarray(K, np.float64), T, int(width), int(height))
    proj, depth = camera.project_with_depth(points)
    if (depth <= 0).any():
        raise CalibrationError(f"{int((depth <= 0).sum())} points end up behind the camera: wrong pairs?")
    errors = np.linalg.norm(proj - pixels, axis=1)
    if errors.mean() > max_error:
        raise CalibrationError(f"mean reprojection error {errors.mean():.2f} px (max {errors.max():.2f} px) exceeds "
                               f"{max_error} px; worst pairs: {np.argsort(errors)[::-1][:3].tolist()}")
    return camera, errors


def save_calibration(path, camera: Camera, support_z: float, **info) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": FORMAT, "camera": camera.to_dict(), "support_z": float(support_z), **info},
                               indent=2))
    return path


def load_calibration(path) -> tuple[Camera, float]:
    """(Camera in the robot base frame, support-surface height) from a calibration JSON."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"camera calibration {path} not found (python -m video_para.so100.calibrate)")
    d = json.loads(path.read_text())
    if d.get("format") != FORMAT:
        raise ValueError(f"{path}: format {d.get('format')!r}, expected {FORMAT}")
    for key in ("camera", "support_z"):
        if key not in d:
            raise KeyError(f"{path}: field '{key}' is missing")
    return Camera.from_dict(d["camera"]), float(d["support_z"])


def _fk_points(entries: list[dict], source: str) -> np.ndarray:
    """Base-frame positions of `pairs`/`support` entries: their 'xyz', or FK of their 'joints'."""
    out, kin = [], None
    for i, e in enumerate(entries):
        if "xyz" in e:
            out.append(np.asarray(e["xyz"], np.float64))
        elif "joints" in e:
            if kin is None:
                from ..robots.so100.kinematics import ArmKinematics
                from ..robots.so100.robot import read_motors
                kin = ArmKinematics()
            out.append(kin.fk(read_motors(e["joints"])[0]))
        else:
            raise KeyError(f"{source}, entry {i}: needs 'joints' (LeRobot <motor>.pos dict) or 'xyz'")
    return np.array(out).reshape(-1, 3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m video_para.so100.calibrate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("intrinsics", help="K from checkerboard images")
    a.add_argument("--images", required=True, help="glob of image files")
    a.add_argument("--pattern", required=True, help="inner corners, e.g. 9x6")
    a.add_argument("--square", type=float, required=True, help="square edge (m)")
    a.add_argument("--max-error", type=float, default=1.0)
    a.add_argument("--out", required=True)
    b = sub.add_parser("extrinsics", help="camera pose in the robot base frame from FK/pixel pairs")
    b.add_argument("--intrinsics", required=True, help="JSON from the 'intrinsics' step")
    b.add_argument("--points", required=True, help="points.json (see above)")
    b.add_argument("--min-points", type=int, default=6)
    b.add_argument("--max-error", type=float, default=2.0)
    b.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "intrinsics":
            import imageio.v2 as imageio
            files = sorted(glob.glob(args.images))
            images = [imageio.imread(f) for f in files]
            if not images:
                raise CalibrationError(f"no images match {args.images}")
            pattern = tuple(int(v) for v in args.pattern.lower().split("x"))
            K, rms, n = intrinsics_from_checkerboards(images, pattern, args.square, max_error=args.max_error)
            H, W = images[0].shape[:2]
            Path(args.out).write_text(json.dumps({"K": K.tolist(), "width": W, "height": H, "rms_px": rms,
                                                  "views": n}, indent=2))
            print(f"[calibrate] intrinsics from {n}/{len(images)} boards: RMS {rms:.3f} px, "
                  f"fx {K[0, 0]:.1f} fy {K[1, 1]:.1f} cx {K[0, 2]:.1f} cy {K[1, 2]:.1f} -> {args.out}")
            return 0
        intr = json.loads(Path(args.intrinsics).read_text())
        pts = json.loads(Path(args.points).read_text())
        pairs = pts.get("pairs", [])
        xyz = _fk_points(pairs, f"{args.points} 'pairs'")
        pixels = np.array([p["pixel"] for p in pairs], np.float64).reshape(-1, 2)
        cam, err = extrinsics_from_points(xyz, pixels, np.asarray(intr["K"]), intr["width"], intr["height"],
                                          args.min_points, args.max_error)
        if "support_z" in pts:
            support_z = float(pts["support_z"])
        elif pts.get("support"):
            support_z = float(np.median(_fk_points(pts["support"], f"{args.points} 'support'")[:, 2]))
        else:
            raise CalibrationError(f"{args.points}: give 'support' (gripper touching the table) or 'support_z'")
        save_calibration(args.out, cam, support_z, reprojection_error_px={"mean": float(err.mean()), "max": float(err.max())},
                         points=len(err), intrinsics_rms_px=intr.get("rms_px"))
        print(f"[calibrate] camera from {len(err)} pairs: reprojection error mean {err.mean():.3f} px, "
              f"max {err.max():.3f} px; camera at {np.round(cam.world_from_cam[:3, 3], 3).tolist()} m; "
              f"support_z {support_z:.4f} m -> {args.out}")
        return 0
    except (CalibrationError, KeyError, FileNotFoundError) as e:
        print(f"[calibrate] REFUSED: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
