# Two commands do all the set-up on a fresh machine (they create .venv and install on first use):
#   make demo   run vpipe on a bundled sample video, offline, and print where the outputs are
#   make test   lint and run the whole test suite (what CI runs); installs the few Debian packages
#               the live-feed tests need (Chromium, Xvfb, GStreamer RTSP server) if missing

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install system-deps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,cluster,postgres]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/vpipe run sample_videos/highway.mp4 --config configs/traffic.yaml --output runs/highway --overwrite

system-deps:
	bash scripts/install_system_deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint system-deps
	$(BIN)/python -m pytest

clean:
	rm -rf runs .pytest_cache
