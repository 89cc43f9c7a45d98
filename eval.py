"""Evaluate a saved policy on an OOD protocol: `python eval.py --policy DIR --protocol left_right`."""
from video_para.eval.cli import main

if __name__ == "__main__":
    main()
