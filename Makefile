# ganad_bench: everything runs inside .venv (created on first use).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The torch build to install when none is present: 2.13.0 is the CPU wheel on the project's machines;
# on a CUDA machine pip takes the matching CUDA build of the same version.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install dev demo test test-real test-all gpu-check lint table sweep-tabular clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, so that pip keeps it and never pulls another (CUDA) build for the package's `torch>=2.1`
install: $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install $(TORCH_SPEC)
	$(BIN)/pip install '.[test]'

dev: $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install $(TORCH_SPEC)
	$(BIN)/pip install -e '.[test]'

# one paper-budget run on the Thyroid file shipped in the package, about a minute on 2 CPU cores (a bare
# `ganad-bench`, RCGAN on Thyroid at its 1,000 epochs, takes about 14 minutes)
demo: install
	$(BIN)/ganad-bench model=dagmm

# one worker process per core (pytest-xdist), a test file per worker at a time (module fixtures built once)
PARALLEL ?= -n auto --dist loadfile

test: dev
	$(BIN)/python -m pytest $(PARALLEL)

test-real: dev
	$(BIN)/python -m pytest -m real_data

test-all: dev
	$(BIN)/python -m pytest $(PARALLEL) -m ""

# on a CUDA machine, in about 20 minutes at most (each stage has a time limit): packs of 1, 10 and 50 ALAD / MEMGAN /
# AMA runs at the papers' widths on KDD99 and MNIST shapes, plain and bf16, a packed CLI sweep, the GPU tests, then
# the compiled variant -> outputs/gpu-check/gpu-check.{json,md} (scripts/gpu_check.sh)
gpu-check: dev
	PYTHON=$(BIN)/python bash scripts/gpu_check.sh outputs/gpu-check

lint: dev
	$(BIN)/ruff check ganad_bench tests $(wildcard scripts)

table:
	$(BIN)/ganad-bench-table outputs/results

sweep-tabular:
	$(BIN)/ganad-bench -m experiment=tabular_baselines

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache
