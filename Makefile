# Set-up is part of every target: a fresh Debian machine with Python 3.11 and root needs nothing else.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install test test-all demo space space-bundle lint clean

$(STAMP): pyproject.toml
	@command -v ffmpeg >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq ffmpeg chromium; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

test: install  ## the CPU suite (tests marked slow are skipped)
	$(BIN)/python -m pytest -q

test-all: install  ## include slow tests
	$(BIN)/python -m pytest -q -m ""

demo: install  ## the main job on built-in defaults
	$(BIN)/python scripts/demo.py

space: install  ## the Gradio Space on http://127.0.0.1:7860 (models from HF_JEPA_* env vars, default make demo's)
	$(BIN)/python spaces/app.py

space-bundle: install  ## build the hf_jepa wheel into spaces/ so the Space folder installs it (requirements.txt)
	rm -f spaces/hf_jepa-*.whl
	$(BIN)/python -m pip wheel -q --no-deps -w spaces .

lint: install
	$(BIN)/ruff check src modeling scripts tests

clean:
	rm -rf $(VENV) outputs
