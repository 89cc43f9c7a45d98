"""Synthetic camera tracks for tests: a fixed camera over a flat grey table, an orange disc drawn at the
projected EE in every frame (what the point-track overlay and the LeRobot round trip look at)."""
import numpy as np

from video_para.episodes import CameraTrack


def dot_track(cam, ee, grey: int, radius: float, colour) -> CameraTrack:
    """One camera's track over the EE positions `ee` (T, 3): disc of `radius` px in `colour` on `grey`."""
    images = np.full((len(ee), cam.height, cam.width, 3), grey, np.uint8)
    vv, uu = np.mgrid[0:cam.height, 0:cam.width] + 0.5
    for t, p in enumerate(ee):
        u, v = cam.project(p)
        images[t][(uu - u) ** 2 + (vv - v) ** 2 <= radius ** 2] = colour
    return CameraTrack(images, np.repeat(cam.K[None], len(ee), 0), np.repeat(cam.world_from_cam[None], len(ee), 0))
