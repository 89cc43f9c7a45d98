"""Training windows: frame t of an episode -> image, start keypoint and the next N_W targets.

Targets are the EE states at t+1 ... t+N_W (the final state repeats past the episode end: the
policy learns to hold still once the task is done). Pixels come from projecting them with *frame
t's* camera, so moving-camera datasets need no special case. Windows whose targets leave the image
follow `out_of_image`: drop (default; counted), clip (to the border pixel) or error.

Augmentation `shift_px`: a random image translation of up to that many pixels (edge-replicated),
applied to the image *and* the camera (K's principal point), so labels stay exact; the shift is
limited so that every target stays inside the image.

`clip_frames` > 1 adds 'clip' (T, 3, H, W): frames t, t+stride, ... (clamped at the episode end),
frame 0 being the current one — the video a diffusion backbone denoises (same shift applied).
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from torch.utils.data import Dataset

from ..models.stats import Stats
from .episodes import Episode

OUT_OF_IMAGE = ("drop", "clip", "error")


class WindowDataset(Dataset):
    """In-memory windows over validated episodes, one camera."""

    def __init__(self, episodes: list[Episode], n_window: int, camera: str = "", out_of_image: str = "drop",
                 shift_px: int = 0, clip_frames: int = 1, clip_stride: int = 1):
        if out_of_image not in OUT_OF_IMAGE:
            raise ValueError(f"out_of_image must be one of {OUT_OF_IMAGE}, got '{out_of_image}'")
        if not episodes:
            raise ValueError("WindowDataset needs at least one episode")
        self.episodes, self.n_window, self.out_of_image, self.shift_px = episodes, n_window, out_of_image, shift_px
        self.clip_frames, self.clip_stride = clip_frames, clip_stride
        self.camera = camera or next(iter(episodes[0].cameras))
        self.index: list[tuple[int, int]] = []
        self._pix: list[np.ndarray] = []     # (1 + N_W, 2) pixels of each kept window, projected once
        self.dropped = self.clipped = 0
        for e, ep in enumerate(episodes):
            if self.camera not in ep.cameras:
                raise KeyError(f"episode {ep.index}: no camera '{self.camera}' (has {sorted(ep.cameras)})")
            for t in range(len(ep)):
                cam = ep.cameras[self.camera].camera(t)
                pix = cam.project(ep.ee_pos[np.concatenate([[t], self._steps(ep, t)])])
                ok = cam.in_image(pix)
                if not ok.all():
                    if out_of_image == "error":
                        raise ValueError(f"episode {ep.index}, frame {t}: {int((~ok).sum())} target(s) project "
                                         f"outside the image of camera '{self.camera}'")
                    if out_of_image == "drop" or not ok[0]:   # the start keypoint itself must be visible
                        self.dropped += 1
                        continue
                    self.clipped += 1
                    pix = np.clip(pix, 0, [cam.width - 1e-3, cam.height - 1e-3])
                self.index.append((e, t))
                self._pix.append(pix)
        if self.dropped or self.clipped:
            warnings.warn(f"WindowDataset: {self.dropped} window(s) dropped, {self.clipped} clipped "
                          f"(targets outside the image)", stacklevel=2)
        if not self.index:
            raise ValueError("no window has all its targets inside the image")

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
        if self.shift_px:
            images, K, pix = self._shift(images, K, pix, np.random.default_rng(aug_seed))
        to_float = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float() / 255.0  # noqa
        f = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
        clip = to_float(images)
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

    def stats(self) -> Stats:
        xyz = np.concatenate([self.episodes[e].ee_pos[self._steps(self.episodes[e], t)] for e, t in self.index])
        sz = np.concatenate([np.full(self.n_window, self.episodes[e].support_z) for e, t in self.index])
        grip = np.concatenate([self.episodes[e].gripper[self._steps(self.episodes[e], t)] for e, t in self.index])
        return Stats.from_data(xyz, xyz[:, 2] - sz, grip)
