"""finetune entry point — filled in by the training / evaluation issues (#6, #7)."""
import sys

if __name__ == "__main__":
    sys.exit("finetune.py is not implemented yet: see issues #6 (training) and #7 (evaluation)")
