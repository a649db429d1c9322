# The template's own entry points. `make demo` on a fresh machine: bake the default project, run its pipeline, and
# benchmark it. `make test` lints the template's own code, then runs every test of the template (CI runs it through
# .ci/run).
.DEFAULT_GOAL := help
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

# pip installs uv into ~/.local/bin when it cannot write to the system (non-root); make sure that is on PATH.
export PATH := $(HOME)/.local/bin:$(PATH)
PYTHON ?= python3
UV ?= uv
PYTEST_WORKERS ?= 2
BUILD := build
SERVING_DURATION ?= 10
# Each pipeline stage is a fresh interpreter: with bytecode caching off (PYTHONDONTWRITEBYTECODE, set on some CI
# images) every stage would recompile MLflow, pandas and scikit-learn from source. Keep the usual caching.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help uv sync demo report comment bench-serving bench-monitor test test-fast lint clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

uv: ## Install uv with pip if it is missing
	@if ! command -v $(UV) >/dev/null 2>&1; then \
		echo "uv not found: installing it with pip"; \
		PIP_BREAK_SYSTEM_PACKAGES=1 $(PYTHON) -m pip install --quiet --disable-pip-version-check uv; \
	fi
	@$(UV) --version

sync: uv ## Install the template's own locked environment (.venv)
	$(UV) sync --frozen

demo: sync ## The main job: bake the default project, run its pipeline end to end, benchmark it (root dvc.yaml)
	$(UV) run --frozen dvc repro
	@echo "baked project: $$(ls -d $(BUILD)/*/ | grep -v bench | head -n 1); figures: benchmarks/results.md"

report: sync ## Write build/report/: the pipeline's figures against main, for the template's pull requests
	mkdir -p $(BUILD)/report
	$(UV) run --frozen python -m tools.benchmark report --output $(BUILD)/report/report.md
	printf '%s' "$${PR_NUMBER:-}" > $(BUILD)/report/pr-number

comment: ## Post a report artifact on its pull request (trusted comment workflow; gh, jq, cml): REPORT_DIR=
	bash '{{cookiecutter.project_slug}}/scripts/post-report.sh' '$(REPORT_DIR)' 'template pipeline'

bench-serving: sync ## Our server against uvicorn/granian (same app), MLflow, KServe, MLServer: benchmarks/serving.*, README
	$(UV) run --frozen python -m tools.serving_benchmark --duration $(SERVING_DURATION) --readme README.md

bench-monitor: sync ## The project's `monitor` on 1M logged predictions: benchmarks/monitor.*, README table
	$(UV) run --frozen python -m tools.monitor_benchmark --readme README.md

test: sync lint ## Lint, then run every test of the template, the slow end-to-end runs included
	$(UV) run --frozen pytest -n $(PYTEST_WORKERS) --dist loadgroup --durations=15

test-fast: sync ## Run the tests that do not install a baked project
	$(UV) run --frozen pytest -n $(PYTEST_WORKERS) --dist loadgroup -m "not slow"

lint: sync ## Ruff and strict mypy on the template's own code (tools/ and tests/), the generated project's rules
	$(UV) run --frozen ruff check tools tests
	$(UV) run --frozen ruff format --check tools tests
	$(UV) run --frozen mypy

clean: ## Remove what baking and testing left in the repository
	rm -rf $(BUILD) .pytest_cache .ruff_cache .mypy_cache
