# loyalty-ml — `make help` lists the targets. Every target creates/syncs the environment itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3.11
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
RUN := $(UV) run --frozen
export LOYALTY_HOME ?= $(CURDIR)/.loyalty
export OPENBLAS_NUM_THREADS ?= 1
export MLFLOW_ENABLE_ARTIFACTS_DESTINATION_CHECK ?= false

.PHONY: help env demo test test-fast test-slow bench lint format clean

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(UV):
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m pip install --user --quiet uv \
		|| python3 -m pip install --user --quiet uv \
		|| python3 -m pip install --user --quiet --break-system-packages uv

env: $(UV) ## Create/sync the virtual environment from uv.lock
	@$(UV) sync --frozen --quiet

demo: env ## Run the main job end to end on built-in synthetic data
	$(RUN) loyalty demo

test: env ## Run the test suite (unit + integration incl. Redis/PostgreSQL; `make test-slow` adds the slow suites)
	$(RUN) pytest -q -m "not slow" $(PYTEST_ARGS)

test-fast: env ## Unit tests only (no Redis/PostgreSQL needed)
	$(RUN) pytest -q -m "not slow and not services" $(PYTEST_ARGS)

test-slow: env ## Only the slow suites (real data sets, servers)
	$(RUN) pytest -q -m "slow" $(PYTEST_ARGS)

bench: env ## Run the benchmarks (writes bench-results/, see BENCHMARKS.md)
	$(RUN) python -m benchmarks $(BENCH_ARGS)

lint: env ## ruff check + format check
	$(RUN) ruff check src tests features serving benchmarks
	$(RUN) ruff format --check src tests features serving benchmarks

format: env ## Apply ruff fixes and formatting
	$(RUN) ruff check --fix src tests features serving benchmarks
	$(RUN) ruff format src tests features serving benchmarks

clean: ## Remove LOYALTY_HOME state and caches (not the environment)
	rm -rf .loyalty .pytest_cache .ruff_cache bench-results
