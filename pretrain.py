"""pretrain entry point — filled in by the training / evaluation issues (#6, #7)."""
import sys

if __name__ == "__main__":
    sys.exit("pretrain.py is not implemented yet: see issues #6 (training) and #7 (evaluation)")
