"""The experiment config: policy x data x env x training, all from YAML + key=value overrides."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..data.config import DataConfig
from ..envs import EnvConfig
from ..envs.tabletop import TabletopConfig
from ..models.policy import PolicyConfig


STAGES = ("finetune", "diffusion")


@dataclass
class TrainConfig:
    stage: str = "finetune"             # finetune: head loss + lambda * aux | diffusion: SVD stage 1 only
    init_from: str = ""                 # a saved policy directory whose *backbone* weights start this run
    steps: int = 1000
    batch_size: int = 32
    grad_accum: int = 1
    lr_backbone: float = 1e-4           # paper, SVD UNet: 1e-6
    lr_head: float = 1e-3               # paper, PARA heads: 1e-4
    weight_decay_backbone: float = 0.0
    weight_decay_head: float = 1e-4
    warmup_steps: int = 50
    grad_clip: float = 1.0
    mixed_precision: str = "no"         # no | fp16 | bf16
    num_workers: int = 0
    log_every: int = 25
    save_every: int = 0                 # checkpoint every N steps (0: only the final policy)
    resume: bool = False                # continue from output_dir/checkpoints/last when it exists

    def validate(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"train.stage must be one of {STAGES}, got '{self.stage}'")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ValueError(f"train.mixed_precision must be no|fp16|bf16, got '{self.mixed_precision}'")
        if self.steps < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError("train.steps, train.batch_size and train.grad_accum must be positive")


@dataclass
class EvalConfig:
    episodes: int = 0                   # 0: every test spec of the protocol
    replan_every: int = 4               # execute this many actions of each predicted chunk
    max_steps: int = 80
    videos: int = 4                     # episodes recorded as mp4 (first N)


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
        if self.train.stage == "diffusion" and (self.policy.backbone.type != "svd" or self.data.clip_frames < 2):
            raise ValueError("train.stage=diffusion needs policy.backbone.type=svd and data.clip_frames > 1")
        size = (getattr(self.env, "image_height", None), getattr(self.env, "image_width", None))
        if None not in size and (self.policy.image_height, self.policy.image_width) != size:
            raise ValueError(f"policy image size {self.policy.image_height}x{self.policy.image_width} does not "
                             f"match the env's rendered {size[0]}x{size[1]} (set env.image_* or policy.image_*)")
