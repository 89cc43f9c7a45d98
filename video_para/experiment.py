"""The experiment config: policy x data x env x training, all from YAML + key=value overrides."""
from __future__ import annotations

from dataclasses import dataclass, field

from .data.config import DataConfig
from .envs import EnvConfig
from .envs.tabletop import TabletopConfig
from .models.heads import heatmap_heads
from .models.policy import PolicyConfig


STAGES = ("finetune", "autoencoder", "diffusion", "pointtrack")
TRACKERS = ("csv", "tensorboard", "wandb")
INIT_PARTS = ("backbone", "heatmap")


@dataclass
class TrainConfig:
    stage: str = "finetune"             # finetune: head loss + lambda * aux | autoencoder: SVD stage 0, fits
                                        # a random-init VAE | diffusion: SVD stage 1 only |
                                        # pointtrack: heatmap loss (+ lambda * aux) on data.overlay frames
    init_from: str = ""                 # a saved policy directory whose weights start this run ...
    init_parts: list[str] = field(default_factory=lambda: ["backbone"])   # ... these parts of it:
                                        # backbone | heatmap (the head's statistics-free part, HeadConfig.HEATMAP)
    steps: int = 1000
    batch_size: int = 32
    grad_accum: int = 1
    lr_backbone: float = 1e-4           # paper, SVD UNet: 1e-6
    lr_head: float = 1e-3               # paper, PARA heads: 1e-4
    weight_decay_backbone: float = 0.0
    weight_decay_head: float = 1e-4
    warmup_steps: int = 50
    grad_clip: float = 1.0
    mixed_precision: str = ""           # no | fp16 | bf16 | "": the launcher's (accelerate launch flag or
                                        # config file; "no" without one)
    num_workers: int = 0
    log_every: int = 25
    save_every: int = 0                 # checkpoint every N steps (0: only the final policy)
    resume: bool = False                # continue from output_dir/checkpoints/last when it exists (the
                                        # config must match the checkpoint's config.yaml) ...
    resume_override: bool = False       # ... unless this is set: continue with the changed config
    ema_decay: float = 0.0              # > 0: EMA of the trained parameters (diffusers EMAModel), exported
    log_with: list[str] = field(default_factory=lambda: ["csv"])   # + tensorboard | wandb (CSV always)

    def validate(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"train.stage must be one of {STAGES}, got '{self.stage}'")
        if self.mixed_precision == "False":         # YAML reads a bare `no` (train.mixed_precision=no) as false
            self.mixed_precision = "no"
        if self.mixed_precision not in ("", "no", "fp16", "bf16"):
            raise ValueError(f"train.mixed_precision must be no|fp16|bf16 or empty (the launcher's), "
                             f"got '{self.mixed_precision}'")
        if self.steps < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError("train.steps, train.batch_size and train.grad_accum must be positive")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"train.ema_decay must be in [0, 1), got {self.ema_decay}")
        for name, values, allowed in (("log_with", self.log_with, TRACKERS), ("init_parts", self.init_parts, INIT_PARTS)):
            if set(values) - set(allowed):
                raise ValueError(f"train.{name}: {sorted(set(values) - set(allowed))} not in {allowed}")


@dataclass
class EvalConfig:
    episodes: int = 0                   # 0: every test spec of the protocol
    replan_every: int = 4               # execute this many actions of each predicted chunk
    ensemble_decay: float | None = None  # ACT's temporal ensembling instead (its m, e.g. 0.01): re-plan every
                                        # tick, average the overlapping chunks (models/policy.py ChunkQueue)
    max_steps: int = 80
    videos: int = 4                     # episodes recorded as mp4 (first N)
    every: int = 0                      # > 0: during training, every N steps roll out the current policy ...
    every_episodes: int = 4             # ... on this many test scenes (spread over the split), main process


@dataclass
class ExperimentConfig:
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    data: DataConfig = field(default_factory=DataConfig)
    env: EnvConfig = field(default_factory=TabletopConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: int = 0
    output_dir: str = "outputs/run"

    def validate(self) -> None:
        self.policy.validate()
        self.data.validate()
        self.train.validate()
        self.env.validate()
        if self.data.image_size and list(self.data.image_size) != [self.policy.image_height, self.policy.image_width]:
            raise ValueError(f"data.image_size {list(self.data.image_size)} must be the policy's image size "
                             f"[{self.policy.image_height}, {self.policy.image_width}] (or empty)")
        if self.train.stage == "diffusion" and (self.policy.backbone.type != "svd" or self.data.clip_frames < 2):
            raise ValueError("train.stage=diffusion needs policy.backbone.type=svd and data.clip_frames > 1")
        frames = self.policy.backbone.clip_frames()
        if frames is not None and self.data.clip_frames > 1 and frames != self.data.clip_frames:
            raise ValueError(f"policy.backbone.n_frames={frames} must equal data.clip_frames={self.data.clip_frames}: "
                             "the SVD UNet denoises the clip's frames")
        if self.train.stage == "autoencoder" and self.policy.backbone.type != "svd":
            raise ValueError("train.stage=autoencoder fits the SVD backbone's VAE: it needs policy.backbone.type=svd")
        if self.train.stage == "pointtrack" and not (self.policy.head.HEATMAP and self.data.overlay):
            raise ValueError(f"train.stage=pointtrack needs policy.head.type={'|'.join(heatmap_heads())} "
                             "and data.overlay=true")
        if self.eval.ensemble_decay is not None and self.eval.ensemble_decay < 0:
            raise ValueError(f"eval.ensemble_decay must be >= 0 (or null: off), got {self.eval.ensemble_decay}")
        if self.eval.every < 0 or (self.eval.every and self.eval.every_episodes < 1):
            raise ValueError("eval.every must be >= 0 and, when set, eval.every_episodes >= 1")
        if "heatmap" in self.train.init_parts:
            self.policy.head.heatmap_part("train.init_parts 'heatmap'")
        if (self.policy.image_height, self.policy.image_width) != (self.env.image_height, self.env.image_width):
            raise ValueError(f"policy image size {self.policy.image_height}x{self.policy.image_width} does not "
                             f"match the env's rendered {self.env.image_height}x{self.env.image_width} "
                             "(set env.image_* or policy.image_*)")
