"""Stage 2 / single-stage training: `python finetune.py experiment=NAME key=value ...`.

Runs under `accelerate launch finetune.py ...` unchanged (see README)."""
import sys

from video_para.config import exit_if_help
from video_para.experiment import ExperimentConfig
from video_para.training.cli import main

if __name__ == "__main__":
    exit_if_help(sys.argv[1:], "python finetune.py experiment=NAME [key=value ...]", __doc__, ExperimentConfig)
    main()
