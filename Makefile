# Quick start: `make demo` (set-up, then the reference pipeline on the embedded data) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# torch and torchvision are pinned as a pair: PyPI's torchvision only imports beside its own torch.
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: install demo test bench clean otter

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[reference,dev,dask]"
	touch $@

demo: install
	$(BIN)/python -m reference train --config auto --out runs/demo

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/grading_throughput.py

clean:
	rm -rf runs .pytest_cache

# Otter-Grader in a virtual environment of its own, for the side-by-side in benchmarks/grading_throughput.py.
otter:
	$(PYTHON) -m venv .venv-otter
	.venv-otter/bin/pip install -q "otter-grader==7.0.0" ipykernel numpy
