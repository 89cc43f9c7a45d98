"""Training windows: frame t of an episode -> image, start keypoint and the next N_W targets.

Targets are the EE states at t+1 ... t+N_W (the final state repeats past the episode end: the
policy learns to hold still once the task is done). Pixels come from projecting them with *frame
t's* camera, so moving-camera datasets need no special case; they are projected once, when the dataset
is built. Windows whose start or target positions leave the image (or lie behind the camera) follow
`out_of_image`: drop (default; counted, with a warning naming the frames), clip (targets to the border
pixel; a window whose start is outside the image, or with a point behind the camera, is dropped all
the same) or error.

Augmentation `shift_px`: a random image translation of up to that many pixels (edge-replicated),
applied to the image *and* the camera (K's principal point), so labels stay exact; the shift is
limited so that every target stays inside the image.

Augmentation `occluders` = n: up to n rectangles (sides in `occluder_size_px`) of one random solid colour
each are pasted into every frame of the window, none within OCCLUDER_CLEARANCE_PX of the start or a
target pixel: the features must find the end effector and its targets past things that are not part of
the task. It draws nothing of any scene (no object, shape or colour set of a protocol's clutter).

Augmentation `image_size` = (H, W) with `crop_scale` = (lo, hi): random resized crop. A box with the
output's aspect ratio covering a fraction in [lo, hi] of the largest such box (area), placed at random
but containing every window pixel, is resized to image_size; K follows through Camera.cropped and
Camera.scaled, so datasets recorded at another resolution (640x480 SO-100, 128x128 LIBERO) train at the
policy's size. (1, 1) is the largest box: a plain resize when the aspects match. If no box of that
aspect contains the window, the whole image is resized (anisotropically; K carries sx != sy).

`clip_frames` > 1 adds 'clip' (T, 3, H, W): frames t, t+stride, ... (clamped at the episode end),
frame 0 being the current one — the video a diffusion backbone denoises (same shift and crop applied).
Frames are indexed per item, so episodes whose images are lazy `VideoFrames` decode only those.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..episodes import Episode
from ..geometry import Camera
from ..models.stats import Stats

OUT_OF_IMAGE = ("drop", "clip", "error")
OCCLUDER_CLEARANCE_PX = 3


def _spans(frames: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0-2, 5, 7-8' (sorted frame numbers, for messages)."""
    runs = []
    for t in frames:
        if runs and t == runs[-1][1] + 1:
            runs[-1][1] = t
        else:
            runs.append([t, t])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


class WindowDataset(Dataset):
    """Windows over validated episodes (frames in memory or decoded lazily), one camera."""

    def __init__(self, episodes: list[Episode], n_window: int, camera: str = "", out_of_image: str = "drop",
                 shift_px: int = 0, occluders: int = 0, occluder_size_px=(6, 20), clip_frames: int = 1, clip_stride: int = 1,
                 image_size: tuple[int, int] | None = None, crop_scale: tuple[float, float] = (1.0, 1.0)):
        if out_of_image not in OUT_OF_IMAGE:
            raise ValueError(f"out_of_image must be one of {OUT_OF_IMAGE}, got '{out_of_image}'")
        if not episodes:
            raise ValueError("WindowDataset needs at least one episode")
        self.episodes, self.n_window, self.out_of_image, self.shift_px = episodes, n_window, out_of_image, shift_px
        self.occluders, self.occluder_size_px = occluders, tuple(occluder_size_px)
        self.clip_frames, self.clip_stride = clip_frames, clip_stride
        self.image_size, self.crop_scale = (tuple(image_size) if image_size else None), tuple(crop_scale)
        self.camera = camera or next(iter(episodes[0].cameras))
        self.index: list[tuple[int, int]] = []
        self._pix: list[np.ndarray] = []     # (1 + N_W, 2) pixels of each kept window, projected once
        self.dropped = self.clipped = 0
        skipped: dict[int, list[int]] = {}   # episode index -> frames whose window was dropped
        for e, ep in enumerate(episodes):
            if self.camera not in ep.cameras:
                raise KeyError(f"episode {ep.index}: no camera '{self.camera}' (has {sorted(ep.cameras)})")
            for t in range(len(ep)):
                cam = ep.cameras[self.camera].camera(t)
                pix, depth = cam.project_with_depth(ep.ee_pos[np.concatenate([[t], self._steps(ep, t)])])
                ok = (depth > 0) & cam.in_image(pix)
                if not ok.all():
                    if out_of_image == "error":
                        raise ValueError(f"episode {ep.index}, frame {t}: {int((~ok).sum())} of the EE positions "
                                         f"t..t+{self.n_window} are behind or outside the image of camera "
                                         f"'{self.camera}' (data.out_of_image=drop skips such windows)")
                    # the start keypoint must be visible, and a point behind the camera has no pixel to clip to
                    if out_of_image == "drop" or not ok[0] or (depth <= 0).any():
                        self.dropped += 1
                        skipped.setdefault(ep.index, []).append(t)
                        continue
                    self.clipped += 1
                    pix = np.clip(pix, 0, [cam.width - 1e-3, cam.height - 1e-3])
                self.index.append((e, t))
                self._pix.append(pix)
        where = "; ".join(f"episode {k} frames {_spans(v)}" for k, v in list(skipped.items())[:10]) + \
            ("; ..." if len(skipped) > 10 else "")
        if self.dropped or self.clipped:
            warnings.warn(f"WindowDataset: {self.dropped} window(s) dropped ({where or 'none'}), {self.clipped} "
                          f"clipped: EE targets behind or outside the image of camera '{self.camera}'", stacklevel=2)
        if not self.index:
            raise ValueError(f"no window has all its EE targets inside the image of camera '{self.camera}' "
                             f"({len(episodes)} episode(s); {where})")

    def _steps(self, ep: Episode, t: int) -> np.ndarray:
        return np.minimum(np.arange(t + 1, t + 1 + self.n_window), len(ep) - 1)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key) -> dict:
        """key: an index, or (index, augmentation seed) so that augmentation is a function of the
        key alone — independent of worker processes, prefetching and resumption."""
        i, aug_seed = key if isinstance(key, tuple) else (key, int(torch.randint(2**62, ())))
        e, t = self.index[i]
        ep = self.episodes[e]
        track = ep.cameras[self.camera]
        steps = self._steps(ep, t)
        pix = self._pix[i]
        frames = np.minimum(t + self.clip_stride * np.arange(self.clip_frames), len(ep) - 1)
        images, K = track.images[frames], track.K[t].copy()       # (T, H, W, 3); frame 0 is t
        rng = np.random.default_rng(aug_seed)
        if self.shift_px:
            images, K, pix = self._shift(images, K, pix, rng)
        if self.occluders:
            images = self._occlude(images, pix, rng)
        f = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
        # numpy, not torch, for per-item work: torch's intra-op threads cost ~30 ms per call on a busy 2-core box
        clip = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)).astype(np.float32) / np.float32(255))
        if self.image_size:
            clip, K, pix = self._resized_crop(clip, Camera(K, track.world_from_cam[t], clip.shape[3], clip.shape[2]),
                                              pix, rng)
        item = {"image": clip[0],
                "start_pixel": f(pix[0]), "target_pixels": f(pix[1:]),
                "target_xyz": f(ep.ee_pos[steps]), "target_height": f(ep.ee_pos[steps, 2] - ep.support_z),
                "target_gripper": f(ep.gripper[steps]), "K": f(K),
                "world_from_cam": f(track.world_from_cam[t]), "support_z": f(ep.support_z)}
        if self.clip_frames > 1:
            item["clip"] = clip
        return item

    def _shift(self, images, K, pix, rng: np.random.Generator):
        """Translate the content of images (T, H, W, 3) by (dx, dy) px: (u, v) moves to (u + dx, v + dy)."""
        H, W = images.shape[1:3]
        s = self.shift_px
        lo = np.maximum(-s, np.ceil(-pix.min(0)).astype(int))                # keep u + dx >= 0
        hi = np.minimum(s, np.floor([W, H] - pix.max(0) - 1e-3).astype(int))  # keep u + dx < W
        if (hi < lo).any():
            return images, K, pix
        dx, dy = (int(rng.integers(a, b + 1)) for a, b in zip(lo, hi))
        padded = np.pad(images, ((0, 0), (s, s), (s, s), (0, 0)), mode="edge")
        images = padded[:, s - dy:s - dy + H, s - dx:s - dx + W]
        K[0, 2] += dx
        K[1, 2] += dy
        return images, K, pix + [dx, dy]

    def _occlude(self, images, pix, rng: np.random.Generator):
        """images (T, H, W, 3) with up to self.occluders solid rectangles clear of the window's pixels."""
        H, W = images.shape[1:3]
        lo, hi = self.occluder_size_px
        out, c = images.copy(), OCCLUDER_CLEARANCE_PX
        for _ in range(int(rng.integers(0, self.occluders + 1))):
            w, h = (int(v) for v in rng.integers(lo, min(hi, W, H) + 1, size=2))
            x, y = int(rng.integers(0, W - w + 1)), int(rng.integers(0, H - h + 1))
            if not ((pix[:, 0] > x - c) & (pix[:, 0] < x + w + c) & (pix[:, 1] > y - c) & (pix[:, 1] < y + h + c)).any():
                out[:, y:y + h, x:x + w] = rng.integers(0, 256, 3)
        return out

    def _resized_crop(self, clip: torch.Tensor, cam: Camera, pix: np.ndarray, rng: np.random.Generator):
        """clip (T, 3, H, W) float -> (T, 3, *image_size), with K and the window pixels mapped alike."""
        H, W = clip.shape[2:]
        out_h, out_w = self.image_size
        lo, hi = np.floor(pix.min(0)).astype(int), np.floor(pix.max(0)).astype(int) + 1   # pixels' cells
        full_w = min(W, H * out_w / out_h)                 # largest box with the output aspect ratio
        need_w = max(hi[0] - lo[0], (hi[1] - lo[1]) * out_w / out_h)
        w = max(full_w * np.sqrt(rng.uniform(*self.crop_scale)), need_w)
        if w <= full_w:
            cw, ch = int(round(w)), min(H, int(round(w * out_h / out_w)))
            cw, ch = max(cw, hi[0] - lo[0]), max(ch, hi[1] - lo[1])
            left = int(rng.integers(max(0, hi[0] - cw), min(W - cw, lo[0]) + 1))
            top = int(rng.integers(max(0, hi[1] - ch), min(H - ch, lo[1]) + 1))
        else:                                              # no box of the output's aspect holds the window
            left, top, cw, ch = 0, 0, W, H
        if (left, top, cw, ch, out_w, out_h) != (0, 0, W, H, W, H):
            clip = F.interpolate(clip[:, :, top:top + ch, left:left + cw], size=(out_h, out_w), mode="bilinear",
                                 antialias=True, align_corners=False).clamp(0, 1)
        sx, sy = out_w / cw, out_h / ch
        cam = cam.cropped(left, top, cw, ch).scaled(sx, sy, out_w, out_h)
        return clip, np.asarray(cam.K), (pix - [left, top]) * [sx, sy]

    def stats(self) -> Stats:
        xyz = np.concatenate([self.episodes[e].ee_pos[self._steps(self.episodes[e], t)] for e, t in self.index])
        sz = np.concatenate([np.full(self.n_window, self.episodes[e].support_z) for e, t in self.index])
        grip = np.concatenate([self.episodes[e].gripper[self._steps(self.episodes[e], t)] for e, t in self.index])
        return Stats.from_data(xyz, xyz[:, 2] - sz, grip, reach_px=self.reach_px())

    def reach_px(self) -> np.ndarray:
        """(N_W,) the largest distance of each step's target from the start pixel over the windows,
        in the pixels the items carry (a resize scales it; shifts do not change it; a zooming crop
        enlarges it by up to 1/sqrt(crop_scale[0]), left to the decoding margin)."""
        offsets = np.stack([p[1:] - p[0] for p in self._pix])                # (windows, N_W, 2)
        if self.image_size:
            e, t = self.index[0]
            cam = self.episodes[e].cameras[self.camera].camera(t)
            offsets = offsets * [self.image_size[1] / cam.width, self.image_size[0] / cam.height]
        return np.linalg.norm(offsets, axis=-1).max(0)
