"""`python -m video_para.bench NAME [args]`: one benchmark module of this package; `NAME --help` for its own."""
import importlib
import pkgutil
import sys
from pathlib import Path

names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))
usage = f"usage: python -m video_para.bench {{{'|'.join(names)}}} [args]  (NAME --help: that benchmark's options)"
if sys.argv[1:2] in (["-h"], ["--help"]):
    print(usage)
    sys.exit(0)
if len(sys.argv) < 2 or sys.argv[1] not in names:
    sys.exit(usage)
importlib.import_module(f"video_para.bench.{sys.argv[1]}").main(sys.argv[2:])
