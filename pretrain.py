"""Stage 1: diffusion-only pretraining of the SVD backbone on demo clips.

`python pretrain.py experiment=tiny_svd_pretrain [key=value ...]` — the same loop as finetune.py with
train.stage=diffusion; the saved policy's backbone starts stage 2 via train.init_from."""
import sys

from video_para.training.cli import main

if __name__ == "__main__":
    main(["train.stage=diffusion", *sys.argv[1:]])
