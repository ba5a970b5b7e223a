# Two commands on a fresh machine:  make app  (set up .venv, start the app)  |  make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# GPU users: override with the CUDA build of the same versions, e.g.
#   make app TORCH_INSTALL="torch==2.13.0 torchvision==0.28.0 torchaudio==2.11.0 --index-url <PyTorch CUDA wheel index>"
TORCH_INSTALL ?= torch==2.13.0 torchvision==0.28.0 torchaudio==2.11.0
HOST ?= 127.0.0.1
PORT ?= 8501
# A class: `make app HOST=0.0.0.0 TEACHER_TOKEN=...` (serving beyond this machine turns classroom
# mode on: sessions own their runs, caps; the token makes a session the teacher; README "Classroom")
TEACHER_TOKEN ?=
CLASSROOM_ENV := $(if $(filter 127.0.0.1 localhost ::1,$(HOST)),,SNNCORE_CLASSROOM=1) \
                 $(if $(TEACHER_TOKEN),SNNCORE_TEACHER_TOKEN=$(TEACHER_TOKEN))

.PHONY: app test setup setup-dev lock clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first (TORCH_INSTALL), then exactly the versions in requirements.lock (everything else, test
# tools included, transitive too), then snncore itself as an editable install without resolving again
$(VENV)/.installed: requirements.lock pyproject.toml requirements.in | $(BIN)/python
	$(BIN)/pip install $(TORCH_INSTALL)
	$(BIN)/pip install -r requirements.lock
	$(BIN)/pip install --no-deps -e .
	$(BIN)/python -m snncore.models.lif_fused      # compile the CPU kernels once (~10 s), cached after
	touch $@

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed

# Re-resolve requirements.lock from requirements-dev.in (keeps the pinned versions that still fit;
# LOCK_ARGS=--upgrade takes the newest). uv lives in its own venv so it never enters the locked one.
# The torch trio is left out of the lock (TORCH_INSTALL installs it); the CPU build of torch is
# resolved so that no CUDA (nvidia-*) packages enter. Where download.pytorch.org is unreachable, point
# at local CPU wheels instead: make lock LOCK_TORCH="--find-links /opt/wheels"
UV_VENV    := .venv-lock
LOCK_TORCH ?= --torch-backend cpu
LOCK_ARGS  ?=
$(UV_VENV)/bin/uv:
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/pip install uv==0.13.9

lock: $(UV_VENV)/bin/uv
	$(UV_VENV)/bin/uv pip compile requirements-dev.in -o requirements.lock --python-version 3.11 \
	  $(LOCK_TORCH) --no-emit-package torch --no-emit-package torchvision --no-emit-package torchaudio \
	  --custom-compile-command "make lock" $(LOCK_ARGS)
	@! grep -in '^nvidia' requirements.lock || (echo "error: CUDA packages in requirements.lock" >&2; exit 1)

app: $(VENV)/.installed
	$(CLASSROOM_ENV) PYTHONWARNINGS=ignore $(BIN)/streamlit run app.py --server.address $(HOST) --server.port $(PORT) \
	  --server.headless true --browser.gatherUsageStats false

test: $(VENV)/.installed
	PYTHONWARNINGS=ignore $(BIN)/python -m pytest

clean-venv:
	rm -rf $(VENV) $(UV_VENV)
