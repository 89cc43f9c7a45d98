"""Expert demos for a protocol's grid: `python -m video_para.data.generate protocol=left_right split=train
[out=DIR] [seed=0] [limit=N] [protocol.rows=8 ...] [env.image_height=96 ...]`.

Prints the success count and the time per demo. With `out=DIR` the episodes are written as a LeRobot
v3 dataset through `data.lerobot.write_dataset`; without it the run only measures (training builds its
demos in memory through `data.sources.build_dataset`).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import exit_if_help, load_config
from ..envs import ENVS, EnvConfig
from ..envs.expert import generate_demos
from ..envs.tabletop import TabletopConfig
from ..scenes import load_protocol, specs


@dataclass
class GenerateConfig:
    protocol: str = "left_right"
    split: str = "train"
    out: str = ""
    seed: int = 0
    limit: int = 0                      # 0: every spec of the split
    env: EnvConfig = field(default_factory=TabletopConfig)


def main(argv: list[str] | None = None) -> list:
    args = list(sys.argv[1:] if argv is None else argv)
    exit_if_help(args, "python -m video_para.data.generate protocol=NAME split=train|test [out=DIR] [key=value ...]",
                 __doc__, GenerateConfig)
    proto_args = [a.removeprefix("protocol.") for a in args if a.startswith("protocol.")]
    cfg = load_config(GenerateConfig, [a for a in args if not a.startswith("protocol.")])
    protocol = load_protocol(cfg.protocol, proto_args)
    scenes = specs(protocol, cfg.split)[: cfg.limit or None]
    env = ENVS.build(cfg.env)
    t0 = time.perf_counter()
    episodes = generate_demos(env, scenes, seed=cfg.seed)
    dt = time.perf_counter() - t0
    frames = sum(len(e) for e in episodes)
    print(f"[generate] {protocol.name}/{cfg.split}: {len(episodes)} demos, {frames} frames, "
          f"{dt / max(1, len(episodes)) * 1e3:.0f} ms/demo")
    if cfg.out:
        from .lerobot import write_dataset
        write_dataset(episodes, Path(cfg.out))
        print(f"[generate] written: {cfg.out}")
    return episodes


if __name__ == "__main__":
    main()
