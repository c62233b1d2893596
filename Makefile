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

.PHONY: repro audit test lab bench browser clean-venv

# The manuscript's MathJax (paper/package-lock.json), copied into the site by the paper stage,
# so the built pages load nothing from a CDN. npm comes from Debian where it is missing.
NODE_STAMP := paper/node_modules/.installed

# $(call debian,COMMAND,PACKAGE): install Debian's PACKAGE when COMMAND is missing and we are
# root (CI); otherwise say so and go on.
define debian
	command -v $(1) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y $(2) \
	    || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(2); }; \
	  else echo "$(1) not found and not root: install Debian's $(2) package"; fi; }
endef

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[dev]"
	$(VENV)/bin/python -m ipykernel install --sys-prefix --name wing --display-name "Python (wing)"
	touch $(STAMP)

$(NODE_STAMP): paper/package.json paper/package-lock.json
	$(call debian,npm,npm)
	npm ci --prefix paper --ignore-scripts --no-audit --no-fund
	touch $(NODE_STAMP)

## browser: Debian's chromium, which prints the manuscript's PDF and runs its reader test
## (without it the paper stage builds the HTML site only, and the reader test is skipped)
browser:
	$(call debian,chromium,chromium)

## repro: the whole compendium (dvc repro) on the embedded synthetic cohort, quick profile,
## ending with the manuscript in results/paper/ (HTML site and manuscript.pdf)
repro: $(STAMP) $(NODE_STAMP) browser
	dvc repro

## audit: the reviewer's check (README, How to audit): every stage that has no output yet runs
## (all of them in a fresh clone), then dvc.lock is compared with the committed one. HEAD, not
## the index: DVC stages dvc.lock itself (core.autostage), so a plain `git diff` would pass.
audit: repro
	@python -c "import sys, torch; sys.path.insert(0, 'bench'); from _measure import cpu_name; \
	  print('this machine:', cpu_name(), '| torch CPU capability:', torch.backends.cpu.get_cpu_capability())"
	git diff --exit-code --stat HEAD -- dvc.lock

## test: the test suite (what .ci/run calls)
test: $(STAMP) $(NODE_STAMP) browser
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
