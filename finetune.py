"""Stage 2 / single-stage training: `python finetune.py experiment=NAME key=value ...`.

Runs under `accelerate launch finetune.py ...` unchanged (see README)."""
from video_para.training.cli import main

if __name__ == "__main__":
    main()
