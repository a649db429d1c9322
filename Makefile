# The template's own entry points. `make demo` on a fresh machine: bake the default project, run its pipeline, and
# benchmark it. `make test` runs every test of the template (CI runs it through .ci/run).
.DEFAULT_GOAL := help
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

# pip installs uv into ~/.local/bin when it cannot write to the system (non-root); make sure that is on PATH.
export PATH := $(HOME)/.local/bin:$(PATH)
PYTHON ?= python3
UV ?= uv
PYTEST_WORKERS ?= 2
# Where `demo` bakes when the root pipeline (dvc.yaml) is absent.
BUILD := build

.PHONY: help uv sync demo test test-fast lint clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

uv: ## Install uv with pip if it is missing
	@if ! command -v $(UV) >/dev/null 2>&1; then \
		echo "uv not found: installing it with pip"; \
		PIP_BREAK_SYSTEM_PACKAGES=1 $(PYTHON) -m pip install --quiet --disable-pip-version-check uv; \
	fi
	@$(UV) --version

sync: uv ## Install the template's own locked environment (.venv)
	$(UV) sync --frozen

demo: sync ## Bake the default project, run its pipeline end to end, benchmark it (root dvc.yaml)
	@if [ -f dvc.yaml ]; then \
		$(UV) run --frozen dvc repro; \
	else \
		echo "no root dvc.yaml: baking the default project into $(BUILD)/ and running its pipeline"; \
		project="$$($(UV) run --frozen python -m tools.bake $(BUILD) | tail -n 1)"; \
		cd "$$project"; \
		git add -A; \
		git diff --cached --quiet || git -c user.name=demo -c user.email=demo@example.com \
			commit --quiet --no-verify -m "Bake the project"; \
		make --no-print-directory setup; \
		$(UV) run --frozen dvc repro; \
		echo "report: $$project/reports/report.md"; \
	fi

test: sync ## Run every test of the template, the slow end-to-end runs included
	$(UV) run --frozen pytest -n $(PYTEST_WORKERS) --durations=15

test-fast: sync ## Run the tests that do not install a baked project
	$(UV) run --frozen pytest -n $(PYTEST_WORKERS) -m "not slow"

lint: sync ## Ruff on the template's own code (tools/ and tests/)
	$(UV) run --frozen ruff check tools tests
	$(UV) run --frozen ruff format --check tools tests

clean: ## Remove what baking and testing left in the repository
	rm -rf $(BUILD) .pytest_cache .ruff_cache
