# The two commands for a fresh machine: `make demo` and `make test` (both install first).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# cpu or gpu: the CUDA stack where nvidia-smi sees a GPU, else the CPU build of vLLM.
STACK ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)
# Extra pip index for torch==2.13.0+cpu where pip cannot find it (e.g. PyTorch's CPU index).
TORCH_INDEX_URL ?=
PIP_INDEX_ARGS := $(if $(TORCH_INDEX_URL),--extra-index-url $(TORCH_INDEX_URL),)
STAMP := $(VENV)/.installed-$(STACK)
DEMO_OUT ?= out/demo

# The report tests render pages in a real headless Chromium (the Debian package).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help install browser demo test bench lint clean

help:
	@echo "make demo   - install, then caption the example images with the toy model (output under $(DEMO_OUT))"
	@echo "make test   - install, then run the whole test suite"
	@echo "make bench  - benchmarks (see bench/README.md)"
	@echo "make lint   - ruff"
	@echo "STACK=$(STACK) (override with STACK=cpu|gpu)"

install: $(STAMP)

$(STAMP): pyproject.toml scalecap_ray/engine/cpu_fix.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install $(PIP_INDEX_ARGS) -e ".[$(STACK),report,test]"
	@if [ "$(STACK)" = cpu ]; then $(BIN)/python -m scalecap_ray.engine.cpu_fix; fi
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: install
	rm -rf $(DEMO_OUT)
	$(BIN)/scalecap-ray run --toy --input examples/images.jsonl --id-key id --output $(DEMO_OUT)
	$(BIN)/scalecap-ray report $(DEMO_OUT)
	$(BIN)/scalecap-ray eval $(DEMO_OUT) --truth examples/truth.jsonl

browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { echo "installing chromium (Debian package) for the report tests"; \
	    $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

test: install browser
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/run_all.py --out bench-results

lint: install
	$(BIN)/ruff check scalecap_ray tests jobs bench examples

clean:
	rm -rf $(VENV) out .pytest_cache
