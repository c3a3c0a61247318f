# One command for the main job, one for the tests; each sets itself up.
#   make demo   -> outputs/: 32 faces from the default model, then the demo edit
#                  "add glasses" (examples/demo-glasses.json: the face model's default
#                  method, gated-pair, at strength 1): delta file, before/after grids of faces
#                  100-115 and of the 16 faces of 100-355 where the rule responds most
#   make test   -> the test suite (installs chromium for the browser tests when it can)
#   make docs   -> the documentation site in site/ (mkdocs.yml), strict: a broken link fails
#   make lint   -> ruff (lint and format check) and mypy over rewrite/ (pyproject.toml's settings)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test lint docs bench bench-edits clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test,docs,lint]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/rewrite sample dcgan-digiface64 --seeds 0-31 --out outputs/demo_grid.png
	$(VENV)/bin/rewrite edit examples/demo-glasses.json --delta outputs/glasses.safetensors
	$(VENV)/bin/rewrite compare examples/demo-glasses.json --delta outputs/glasses.safetensors \
	    --seeds 100-115 --out outputs/demo_compare.png
	$(VENV)/bin/rewrite compare examples/demo-glasses.json --delta outputs/glasses.safetensors \
	    --seeds 100-355 --matched 16 --out outputs/demo_matched.png

# pytest-xdist workers, each taking whole test files (module fixtures computed once), the
# longest files first (tests/conftest.py). Three, not two, on a 2-core machine: the torchrun
# and server tests spend much of their time waiting on subprocesses. Fewer: PYTEST_ARGS=-n2.
# The fast lane, without the real model: make test PYTEST_ARGS='-m "not slow"'
test: $(STAMP)
	@bash tools/ensure_browser.sh
	$(PY) -m pytest -q -n 3 --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# Checks only, never rewrites: `$(VENV)/bin/ruff format rewrite` applies the formatting.
lint: $(STAMP)
	$(VENV)/bin/ruff check rewrite
	$(VENV)/bin/ruff format --check rewrite
	$(VENV)/bin/mypy

# Strict: a broken link, a missing page or an unresolved API reference fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

bench: $(STAMP)
	$(PY) benchmarks/solver_speed.py
	$(PY) benchmarks/stats_throughput.py --rounds 5
	$(PY) benchmarks/stylegan2_full.py
	$(PY) benchmarks/stats_scaling.py
	$(PY) benchmarks/ui_timing.py
	$(PY) benchmarks/sampling_throughput.py

bench-edits: $(STAMP)
	$(PY) benchmarks/edit_benchmark.py

# Locality/efficacy curves and each method's frontier at silent change <= 0.010, on the
# tune and test edits (benchmarks/frontier.py; judging samples 3000-3255, for reporting).
.PHONY: bench-frontier
bench-frontier: $(STAMP)
	$(PY) benchmarks/frontier.py

clean:
	rm -rf $(VENV) outputs test-artifacts .pytest_cache site
