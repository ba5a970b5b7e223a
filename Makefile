# Two commands on a fresh machine:  make app  (set up .venv, start the app)  |  make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# GPU users: override with the CUDA build of the same version, e.g.
#   make app TORCH_INSTALL="torch==2.13.0 --index-url <PyTorch CUDA wheel index for your driver>"
TORCH_INSTALL ?= torch==2.13.0
HOST ?= 127.0.0.1
PORT ?= 8501

.PHONY: app test setup setup-dev clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first (a CPU build), then the rest with the same pins, so pip never pulls CUDA wheels
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install $(TORCH_INSTALL)
	$(BIN)/pip install -r requirements.txt
	$(BIN)/python -m snncore.models.lif_fused      # compile the CPU kernels once (~10 s), cached after
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

app: $(VENV)/.installed
	PYTHONWARNINGS=ignore $(BIN)/streamlit run app.py --server.address $(HOST) --server.port $(PORT) \
	  --server.headless true --browser.gatherUsageStats false

test: $(VENV)/.installed-dev
	PYTHONWARNINGS=ignore $(BIN)/python -m pytest

clean-venv:
	rm -rf $(VENV)
