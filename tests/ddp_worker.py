"""Run by tests/test_ddp.py under `accelerate launch` (2 CPU processes): train a tiny policy, then
every rank saves its parameters and what it saw, so the test can compare ranks."""
import json
import sys
from pathlib import Path

import torch
from accelerate import Accelerator, PartialState
from safetensors.torch import save_file
from torch.utils.data import DataLoader

from video_para.config import load_config
from video_para.data.sources import build_dataset
from video_para.models import Policy
from video_para.training.config import ExperimentConfig
from video_para.training.trainer import train

cfg = load_config(ExperimentConfig, sys.argv[1:])
out = Path(cfg.output_dir)
dataset = build_dataset(cfg.data, cfg.env, cfg.policy.n_window, seed=cfg.seed, progress=False)
torch.manual_seed(cfg.seed)
policy = train(Policy(cfg.policy, dataset.stats()), dataset, cfg.train, out, seed=cfg.seed, progress=False)
state = PartialState()
# the indices this rank draws through an Accelerate-prepared loader: DDP must shard the data
probe = Accelerator().prepare(DataLoader(list(range(len(dataset))), batch_size=4, shuffle=True,
                                         generator=torch.Generator().manual_seed(cfg.seed)))
first = next(iter(probe)).tolist()
save_file({k: v.contiguous() for k, v in policy.state_dict().items()}, out / f"rank{state.process_index}.safetensors")
(out / f"rank{state.process_index}.json").write_text(json.dumps({"world": state.num_processes, "first": first}))
