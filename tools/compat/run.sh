#!/usr/bin/env bash
# `make test-compat`: round-trip LeRobot v3 datasets between our writer/reader and LeRobot's own
# (lerobot==0.6.1 needs Python >= 3.12, our stack is 3.11, so LeRobot runs in a throwaway venv
# outside the repo; it pulls its own torch, a multi-GB CUDA build, on first use).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY312="${PY312:-$HOME/.pyenv/versions/3.12.1/bin/python}"
COMPAT_VENV="${COMPAT_VENV:-$HOME/.cache/video_para/lerobot-0.6.1}"
LEROBOT="${LEROBOT:-lerobot[dataset]==0.6.1}"
OURS="${OURS:-.venv/bin/python}"

if [ ! -f "$COMPAT_VENV/.installed" ]; then
    test -x "$PY312" || { echo "test-compat: needs Python 3.12 at $PY312 (set PY312=...)" >&2; exit 2; }
    start=$(date +%s)
    "$PY312" -m venv "$COMPAT_VENV"
    "$COMPAT_VENV/bin/python" -m pip install --quiet --upgrade pip
    "$COMPAT_VENV/bin/python" -m pip install --quiet "$LEROBOT"
    touch "$COMPAT_VENV/.installed"
    echo "[compat] venv $COMPAT_VENV with $LEROBOT installed in $(( $(date +%s) - start )) s"
fi
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
"$OURS" tools/compat/roundtrip.py --lerobot-python "$COMPAT_VENV/bin/python" "$@"
