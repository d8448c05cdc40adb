.PHONY: install browser demo test test-fast quality style bench tiny-model clean

# Offline by construction: tests and the demo use the tiny model and synthetic data this repo builds itself.
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export HF_EVALUATE_OFFLINE ?= 1
# One thread per process: on small CPUs, OpenMP spin contention makes timings swing 50x.
export OMP_NUM_THREADS ?= 1
export TOKENIZERS_PARALLELISM ?= false
# deepspeed (in the tests extra) installs without compiling any op; what a CPU run needs is built on first use.
export DS_BUILD_OPS ?= 0

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
check_dirs := src scripts tests benchmarks evaluate_metrics app
DEMO_DIR ?= data
SEED ?= 42
# THINKING=1 adds the cold-start thinking branch to the demo.
THINKING ?=

# The stamp makes `install` idempotent: it reinstalls only when setup.py (the pins) or an `evaluate` module changes.
$(STAMP): setup.py $(wildcard evaluate_metrics/*/*.py)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m radvlm_grpo.evaluation.install_modules
	touch $(STAMP)

install: $(STAMP) browser

# The web app's browser test (tests/test_app.py) drives Debian's chromium and chromedriver: installed here when missing
# and apt-get can (as root); elsewhere that test is skipped and says why.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	echo "chromium and chromedriver are not installed (needs root and apt-get): the browser test will be skipped"

demo: install
	$(PY) scripts/demo.py --output_dir $(DEMO_DIR) --seed $(SEED) $(if $(THINKING),--thinking)

test: install
	$(PY) -m pytest tests -q -ra --durations=10 --timeout=900

# Everything but the end-to-end training runs.
test-fast: install
	$(PY) -m pytest tests -q -m "not slow"

quality: install
	$(VENV)/bin/ruff check $(check_dirs) setup.py
	$(VENV)/bin/ruff format --check $(check_dirs) setup.py
	$(VENV)/bin/lint-imports --no-cache

style: install
	$(VENV)/bin/ruff check --fix $(check_dirs) setup.py
	$(VENV)/bin/ruff format $(check_dirs) setup.py

bench: install
	@for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

tiny-model: install
	$(PY) -m radvlm_grpo.models.tiny $(DEMO_DIR)/tiny-qwen3-vl

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info
