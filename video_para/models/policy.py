"""Policy = backbone + head + statistics: image + camera + current EE -> N_W world targets + gripper.

The policy is the unit of exchange: it saves as a directory of config.json + model.safetensors +
stats.json (+ backbone/: the architecture configs of a library backbone, so the folder rebuilds it
without the original weights), carries its bin ranges and normalisation, and knows nothing about
environments.
"""
from __future__ import annotations

import json
import os
import shutil
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from accelerate import init_empty_weights
from safetensors.torch import load_file, save_file
from torch import nn

from ..config import from_dict, to_dict
from ..geometry import Camera
from .backbones import BACKBONES, BackboneConfig
from .backbones.tiny import TinyBackboneConfig
from .gripper import check_filter, check_snap, filter_gripper, snap_to_lowest
from .heads import HEADS, Decoded, HeadConfig
from .heads.para import ParaHeadConfig
from .stats import Stats

FORMAT = "video_para.policy/1"


@dataclass
class PolicyConfig:
    backbone: BackboneConfig = field(default_factory=TinyBackboneConfig)
    head: HeadConfig = field(default_factory=ParaHeadConfig)
    n_window: int = 12                  # N_W future steps predicted from one observation
    image_height: int = 128
    image_width: int = 128
    aux_loss_weight: float = 1.0        # lambda on the backbone's auxiliary (diffusion) loss
    gripper_filter: str = "none"        # chunk-level gripper decoding (models/gripper.py): none | one_switch | median
    gripper_filter_width: int = 5       # median: window in steps (odd)
    gripper_snap: str = "none"          # after the filter: none | lowest (each switch to the lowest step near it)
    gripper_snap_window: int = 1        # lowest: how many steps a switch may move

    def validate(self) -> None:
        if self.n_window < 1 or self.image_height < 1 or self.image_width < 1:
            raise ValueError("policy.n_window and the image size must be positive")
        self.backbone.validate_mode()
        check_filter(self.gripper_filter, self.gripper_filter_width)
        check_snap(self.gripper_snap, self.gripper_snap_window)

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.image_height, self.image_width)


@dataclass
class ActionChunk:
    """One prediction: actions (N_W, 4) = world xyz + gripper, with what produced them."""

    actions: np.ndarray
    pixels: np.ndarray            # (N_W, 2) predicted (PARA) or projected (regression) image pixels
    heatmaps: np.ndarray | None   # (N_W, H_out, W_out) PARA probabilities, None for regression


class ChunkQueue:
    """LeRobot's inference interface (PreTrainedPolicy.select_action / reset): the first `replan_every`
    actions of a predicted chunk wait in a deque and are handed out one per control tick; the tick
    that finds it empty re-plans from its observation (the others ignore theirs). Every runner — sim
    rollouts, the SO-100 loop — calls select_action once per tick. Policy mixes it in; `queued()`
    gives it to anything with predict() (an oracle, a replayed demo).

    observation = {"image": (H, W, 3) uint8 or float in [0, 1], "camera": Camera of that image,
                   "ee_pos": (3,) current world EE position, "support_z": table height (world z)}"""

    replan_every: int = 4
    ensemble_decay: float | None = None        # ACT's temporal ensembling (its m), None: off. Every tick
                                               # re-plans; the action is the mean of every chunk still covering
                                               # this tick, weighted exp(-m * i), i = 0 the oldest
    last_chunk: ActionChunk | None = None      # the chunk the queued actions come from (overlays, logs)
    _queue: deque | tuple = ()
    _covering: list | tuple = ()               # ensembling: each live chunk's actions from this tick on, oldest first

    @property
    def queued(self) -> int:
        """Actions left before the next re-plan (0: the next select_action predicts)."""
        return len(self._queue)

    def reset(self, replan_every: int | None = None) -> None:
        """Empty the queue (before each episode); a `replan_every` given applies from now on."""
        self._queue, self.last_chunk, self._covering = deque(), None, []
        if replan_every is not None:
            self.replan_every = int(replan_every)

    def select_action(self, observation: dict) -> np.ndarray:
        """One action (4,): world xyz + gripper command in [0, 1]."""
        if self._queue:
            return self._queue.popleft()
        o = observation
        self.last_chunk = self.predict(o["image"], o["camera"], o["ee_pos"], o.get("support_z", 0.0))
        if self.ensemble_decay is None:
            self._queue = deque(self.last_chunk.actions[: self.replan_every])
            return self._queue.popleft()
        self._covering = [c[1:] for c in self._covering if len(c) > 1] + [self.last_chunk.actions]
        w = np.exp(-self.ensemble_decay * np.arange(len(self._covering)))
        return (w[:, None] * np.stack([c[0] for c in self._covering])).sum(0) / w.sum()


class Predictor(Protocol):
    """What queued() wraps: one observation -> ActionChunk (an oracle, a replayed demo)."""

    def predict(self, image, camera: Camera, ee_pos, support_z: float) -> ActionChunk: ...


@runtime_checkable
class EpisodicPredictor(Predictor, Protocol):
    """A Predictor with per-episode state (a plan): queued() calls its reset() with its own."""

    def reset(self) -> None: ...


class _Queued(ChunkQueue):
    def __init__(self, predictor: Predictor):
        self.predictor = predictor

    def predict(self, *args):
        return self.predictor.predict(*args)

    def reset(self, replan_every: int | None = None) -> None:
        super().reset(replan_every)
        if isinstance(self.predictor, EpisodicPredictor):
            self.predictor.reset()


def queued(policy: ChunkQueue | Predictor) -> ChunkQueue:
    """`policy` itself if it has select_action/reset (a Policy), else a ChunkQueue over its predict()."""
    return policy if isinstance(policy, ChunkQueue) else _Queued(policy)


def image_tensor(image, camera: Camera, size: tuple[int, int]) -> torch.Tensor:
    """One (H, W, 3) frame, uint8 or float in [0, 1], -> float tensor in [0, 1]. Anything else is a
    ValueError naming what is wrong: a float image in 0..255, a NaN frame or a frame of another size
    than the calibration or the policy would otherwise give finite, confidently wrong actions."""
    img = image.detach().cpu() if isinstance(image, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(image))
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"predict: image must be one (H, W, 3) RGB frame, got shape {tuple(img.shape)}")
    if img.dtype == torch.uint8:
        img = img.float() / 255.0
    elif img.is_floating_point():
        img = img.float()
        if not torch.isfinite(img).all():
            raise ValueError(f"predict: image has {int((~torch.isfinite(img)).sum())} NaN/Inf values")
        if img.min() < 0 or img.max() > 1:
            raise ValueError(f"predict: float image values span [{img.min():.4g}, {img.max():.4g}]; float images must "
                             "be in [0, 1] (pass 0..255 images as uint8)")
    else:
        raise ValueError(f"predict: image dtype {img.dtype} is not supported; pass uint8 (0..255) or float in [0, 1]")
    H, W = img.shape[:2]
    if (H, W) != (camera.height, camera.width):
        raise ValueError(f"predict: image is {W}x{H} but its camera is calibrated for {camera.width}x{camera.height} "
                         "(resize the image and use camera.scaled)")
    if (H, W) != tuple(size):
        raise ValueError(f"predict: image is {W}x{H} but the policy takes {size[1]}x{size[0]} images "
                         "(resize it and use camera.scaled)")
    return img


PRETRAIN_STAGES = ("autoencoder", "diffusion")   # the backbone's own losses (SVD stage 0 and stage 1)


class Policy(nn.Module, ChunkQueue):
    def __init__(self, config: PolicyConfig, stats: Stats, architecture: Path | None = None, run: dict | None = None):
        """`architecture`: a saved policy's backbone/ folder, to rebuild the backbone without its weights.
        `run`: the resolved config of the run that trained it (training passes it; saved as config.json
        `run`), so that eval.py evaluates it in its own env, protocol and re-planning wherever it is
        copied; its eval.replan_every and eval.ensemble_decay are select_action's re-planning."""
        super().__init__()
        config.validate()
        self.config, self.stats, self.run = config, stats, dict(run or {})
        self.reset(self.run.get("eval", {}).get("replan_every", ChunkQueue.replan_every))
        self.ensemble_decay = self.run.get("eval", {}).get("ensemble_decay")
        self.backbone = BACKBONES.build(config.backbone, config.image_size, architecture=architecture)
        self.head = HEADS.build(config.head, self.backbone.out_channels, config.n_window, config.image_size, stats)

    # -- training -----------------------------------------------------------------------
    def compute_loss(self, batch: dict, heatmap_only: bool = False) -> dict:
        """Named loss terms and their total 'loss' (head loss + aux_loss_weight * backbone aux loss).
        `heatmap_only`: point-track pretraining, whose dot carries a 2D track only (no height or
        gripper labels an embodiment-agnostic video could provide)."""
        out = self.backbone(batch["image"], batch["start_pixel"], clip=batch.get("clip"))
        terms = self.head.loss(self.head(out.features), batch)
        if heatmap_only:
            terms = {"heatmap": terms["heatmap"], "loss": terms["heatmap"]}
        if out.aux_loss is not None:
            terms["aux"] = out.aux_loss
            terms["loss"] = terms["loss"] + self.config.aux_loss_weight * out.aux_loss
        return terms

    def forward(self, batch: dict, stage: str = "finetune") -> dict:  # one entry point, so DDP wrappers sync
        """stage: finetune (head + lambda * aux) | pointtrack (heatmap + lambda * aux) | autoencoder
        (SVD stage 0: VAE fit) | diffusion (SVD stage 1)."""
        if stage in PRETRAIN_STAGES:
            loss = self.backbone.pretrain_loss(stage, batch)
            return {stage: loss, "loss": loss}
        return self.compute_loss(batch, heatmap_only=stage == "pointtrack")

    def freeze_unused(self, stage: str) -> None:
        """Stop gradients to what `stage`'s loss never reaches — the head in the backbone's own stages,
        head parts (Head.freeze_for), backbone parts (Backbone.prepare_stage) — so those get no
        optimizer state and DDP finds no unused parameters (they keep their values)."""
        self.backbone.prepare_stage(stage, uses_aux=self.config.aux_loss_weight > 0)
        if stage in PRETRAIN_STAGES:
            self.head.requires_grad_(False)
        else:
            self.head.freeze_for(stage)

    # -- inference ----------------------------------------------------------------------
    @torch.no_grad()
    def predict_batch(self, image: torch.Tensor, start_pixel: torch.Tensor, camera: Camera,
                      support_z) -> Decoded:
        """Batched inference; `camera` is a torch Camera batched like the images. Fills `xyz`
        (lifting PARA pixels + heights) and `pixels` (projecting regression xyz) so every head
        decodes to the same structure; the gripper column goes through policy.gripper_filter and gripper_snap."""
        out = self.backbone(image, start_pixel)
        dec = self.head.decode(self.head(out.features), start_pixel)
        dec.gripper = filter_gripper(dec.gripper, self.config.gripper_filter, self.config.gripper_filter_width)
        if dec.xyz is None:
            dec.xyz = camera.lift(dec.pixels, dec.heights, torch.as_tensor(support_z, dtype=dec.pixels.dtype)[..., None])
        if dec.pixels is None:
            dec.pixels, _ = camera.project_with_depth(dec.xyz)
        if self.config.gripper_snap == "lowest":
            dec.gripper = snap_to_lowest(dec.gripper, dec.xyz[..., 2], self.config.gripper_snap_window)
        return dec

    def predict(self, image, camera: Camera, ee_pos, support_z: float = 0.0) -> ActionChunk:
        """One observation: image (H, W, 3) uint8 or float in [0,1], its camera, the current EE world
        position (conditions the backbone through its pixel) -> ActionChunk."""
        self.eval()
        device = next(self.parameters()).device
        img = image_tensor(image, camera, self.config.image_size)
        ee = np.asarray(ee_pos, dtype=np.float64)
        if ee.shape != (3,) or not np.isfinite(ee).all() or not np.isfinite(support_z):
            raise ValueError(f"predict: ee_pos must be 3 finite world coordinates and support_z finite, "
                             f"got ee_pos={ee.tolist()}, support_z={support_z}")
        cam = camera.torch(torch.float32, device)
        start = cam.project(torch.as_tensor(ee, dtype=torch.float32, device=device))
        cam_b = Camera(cam.K[None], cam.world_from_cam[None], cam.width, cam.height)
        dec = self.predict_batch(img.permute(2, 0, 1)[None].to(device), start[None], cam_b, [float(support_z)])
        actions = torch.cat([dec.xyz[0], dec.gripper[0, :, None]], -1)
        if not torch.isfinite(actions).all():
            raise FloatingPointError("policy produced NaN/Inf actions")
        return ActionChunk(actions.cpu().numpy().astype(np.float64), dec.pixels[0].cpu().numpy(),
                           None if dec.heatmaps is None else dec.heatmaps[0].cpu().numpy())

    # -- optimisation -------------------------------------------------------------------
    def param_groups(self, lr_backbone: float, lr_head: float, wd_backbone: float = 0.0,
                     wd_head: float = 0.0) -> list[dict]:
        """AdamW groups with separate backbone/head learning rates; the backbone's randomly initialised
        additions (keypoint embedding, frame weights) train at the head's rate without weight decay;
        a frozen part contributes nothing (no optimizer state)."""
        added = {id(p) for p in self.backbone.added_parameters()}
        trained = [p for p in self.backbone.parameters() if p.requires_grad]
        groups = [{"name": "backbone", "params": [p for p in trained if id(p) not in added],
                   "lr": lr_backbone, "weight_decay": wd_backbone},
                  {"name": "backbone_added", "params": [p for p in trained if id(p) in added],
                   "lr": lr_head, "weight_decay": 0.0},
                  {"name": "head", "params": [p for p in self.head.parameters() if p.requires_grad],
                   "lr": lr_head, "weight_decay": wd_head}]
        return [g for g in groups if g["params"]]

    # -- persistence --------------------------------------------------------------------
    def save_pretrained(self, directory) -> Path:
        """Write config.json + model.safetensors + stats.json atomically (temp dir, then rename)."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        for stale in directory.parent.glob(f".{directory.name}.*"):     # left by a save that was killed
            shutil.rmtree(stale, ignore_errors=True)
        tmp = directory.parent / f".{directory.name}.tmp-{os.getpid()}"
        tmp.mkdir()                                 # mode from the umask (tempfile.mkdtemp's is 0700)
        try:
            meta = {"format": FORMAT, "policy": to_dict(self.config), **({"run": self.run} if self.run else {})}
            (tmp / "config.json").write_text(json.dumps(meta, indent=2))
            state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
            save_file(state, tmp / "model.safetensors")
            self.stats.save(tmp / "stats.json")
            self.backbone.save_architecture(tmp / "backbone")
            if directory.exists():
                old = directory.with_name(f".{directory.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(directory, old)
                os.replace(tmp, directory)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory

    @classmethod
    def from_pretrained(cls, directory, map_location: str = "cpu") -> "Policy":
        directory = Path(directory)
        for name in ("config.json", "model.safetensors", "stats.json"):
            if not (directory / name).exists():
                raise FileNotFoundError(f"{directory} is not a saved policy: {name} is missing")
        try:
            meta = json.loads((directory / "config.json").read_text())
        except ValueError as exc:
            raise ValueError(f"{directory / 'config.json'}: not valid JSON ({exc})") from None
        if meta.get("format") != FORMAT:
            raise ValueError(f"{directory}/config.json: unknown format {meta.get('format')!r} (expected {FORMAT})")
        architecture = directory / "backbone"
        with init_empty_weights():    # built without weights (no source weights read), then filled once
            policy = cls(from_dict(PolicyConfig, meta["policy"]), Stats.load(directory / "stats.json"),
                         architecture if architecture.is_dir() else None, meta.get("run"))
        # clone: tensors in freshly allocated (aligned) memory compute bit-identically to the saved policy
        try:
            state = {k: v.clone() for k, v in load_file(directory / "model.safetensors", device=map_location).items()}
        except Exception as exc:                            # SafetensorError, OSError: truncated or not safetensors
            raise ValueError(f"{directory / 'model.safetensors'}: cannot be read (truncated or not a safetensors "
                             f"file: {exc})") from None
        missing, unexpected = policy.load_state_dict(state, strict=False, assign=True)
        if missing or unexpected:
            raise ValueError(f"{directory}/model.safetensors does not match its config: "
                             f"missing {missing[:5]}, unexpected {unexpected[:5]}")
        return policy.to(map_location)
