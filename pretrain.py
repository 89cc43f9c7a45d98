"""Pretraining stages, the same loop as finetune.py; the saved policy starts the next stage via
train.init_from (+ train.init_parts):
  autoencoder  SVD stage 0: fit a random-init (tiny) VAE to the demo frames and set its latent scale
  diffusion    SVD stage 1: diffusion-only training of the UNet on demo clips
  pointtrack   point-track pretraining on robot-free videos with a dot at the EE

`python pretrain.py experiment=tiny_svd_autoencoder|tiny_svd_pretrain|tiny_pointtrack_pretrain [key=value ...]`"""
import sys

from video_para.config import exit_if_help
from video_para.experiment import ExperimentConfig
from video_para.training.cli import main

if __name__ == "__main__":
    exit_if_help(sys.argv[1:], "python pretrain.py experiment=NAME [key=value ...]", __doc__, ExperimentConfig)
    main(stages=("autoencoder", "diffusion", "pointtrack"), script="pretrain")
