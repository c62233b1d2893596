# The two set-up commands of the README. Each is idempotent: it builds .venv from the
# pinned pyproject.toml when needed, then does its work.
PYTHON ?= python3.11
VENV   := .venv
STAMP  := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# Offline-safe and deterministic defaults for every command below.
export HF_HUB_OFFLINE := 1
export DVC_NO_ANALYTICS := 1
export PYTHONHASHSEED := 0

.PHONY: repro test lab bench clean-venv

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[dev]"
	$(VENV)/bin/python -m ipykernel install --sys-prefix --name wing --display-name "Python (wing)"
	touch $(STAMP)

## repro: the whole compendium (dvc repro) on the embedded synthetic cohort, quick profile
repro: $(STAMP)
	dvc repro

## test: the test suite (what .ci/run calls)
test: $(STAMP)
	pytest

## lab: open the stage notebooks in JupyterLab
lab: $(STAMP)
	jupyter lab notebooks/

## bench: on-demand benchmarks (results recorded under bench/results/)
bench: $(STAMP)
	python bench/gradnorm_step.py
	python bench/balancer_step.py
	python bench/architecture_cost.py
	python bench/training_throughput.py
	python bench/stage_overhead.py
	python bench/pipeline_cost.py  # runs dvc repro -f (about 15 min on 2 cores)

clean-venv:
	rm -rf $(VENV)
