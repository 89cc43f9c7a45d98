import numpy as np
import pytest

from video_para.data.overlay import ORANGE, point_track_frames


def test_robot_removed_and_dot_drawn():
    T, H, W = 4, 20, 30
    scene = np.zeros((H, W, 3), np.uint8)
    scene[:, :, 1] = np.arange(W, dtype=np.uint8)[None] * 5          # static textured background
    images = np.repeat(scene[None], T, 0)
    masks = np.zeros((T, H, W), bool)
    for t in range(T):                                                 # a grey "arm" moving right
        masks[t, 5:15, 3 + 5 * t: 8 + 5 * t] = True
        images[t][masks[t]] = 200
    ee = np.array([[25.5, 2.5]] * T)
    out = point_track_frames(images, masks, ee, radius_px=1.5)
    dot = np.zeros((H, W), bool)
    dot[1:4, 24:27] = True
    for t in range(T):
        np.testing.assert_array_equal(out[t][dot], np.tile(ORANGE, (dot.sum(), 1)))
        np.testing.assert_array_equal(out[t][~dot], scene[~dot])      # arm gone: exact background
    with pytest.raises(ValueError, match="robot_masks"):
        point_track_frames(images, masks[:, :5], ee, 2)
