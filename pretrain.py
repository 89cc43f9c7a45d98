"""Stage 1: diffusion-only pretraining of the SVD backbone on demo clips (train.stage=diffusion), or
point-track pretraining on robot-free videos with a dot at the EE (train.stage=pointtrack).

`python pretrain.py experiment=tiny_svd_pretrain|tiny_pointtrack_pretrain [key=value ...]` — the same
loop as finetune.py; the saved policy starts stage 2 via train.init_from (+ train.init_parts)."""
from video_para.training.cli import main

if __name__ == "__main__":
    main(stages=("diffusion", "pointtrack"), script="pretrain")
