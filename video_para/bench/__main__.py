import importlib
import pkgutil
import sys
from pathlib import Path

names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))
if len(sys.argv) < 2 or sys.argv[1] not in names:
    sys.exit(f"usage: python -m video_para.bench {{{'|'.join(names)}}} [args]")
importlib.import_module(f"video_para.bench.{sys.argv[1]}").main(sys.argv[2:])
