# Two commands for a fresh clone: `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export VISGATE_DB_PATH ?= .visgate/visgate.db

.PHONY: install browser run test lint format config-table bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned to the CPU build: the worker extra would otherwise pull CUDA wheels.
	$(BIN)/pip install -q "torch==2.13.0" || $(BIN)/pip install -q --index-url https://download.pytorch.org/whl/cpu "torch>=2.4,<3"
	$(BIN)/pip install -q -e '.[dev,worker]'
	touch $(STAMP)

install: $(STAMP)

## Start the control plane on the embedded store with the local provider (no cloud account).
run: $(STAMP)
	@mkdir -p .visgate
	@test -s .visgate/dev-key.json || PROVIDER=local $(BIN)/visgate keys create --name dev --json > .visgate/dev-key.json
	@echo "API key (also in .visgate/dev-key.json): $$($(BIN)/python -c 'import json;print(json.load(open(".visgate/dev-key.json"))["api_key"])')"
	@echo "Open http://127.0.0.1:8080 and sign in with the key above (the web console),"
	@echo "or: export VISGATE_URL=http://127.0.0.1:8080 VISGATE_API_KEY=<key above>; $(BIN)/visgate deploy lumen/3d-pipeline --wait"
	PROVIDER=local WEBHOOK_ALLOW_PRIVATE_URLS=true HF_HUB_OFFLINE=1 VISGATE_TRUSTED_PROXY_HOPS=0 $(BIN)/visgate serve --host 127.0.0.1 --port 8080

## The browser the console's tests drive: Debian's chromium package (Playwright never
## downloads one). Installed with apt-get when missing; VISGATE_CHROMIUM names another binary.
CHROMIUM ?= $(or $(VISGATE_CHROMIUM),/usr/bin/chromium)
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
browser:
	@test -x $(CHROMIUM) || { \
	  echo "installing Debian's chromium for the console's browser tests"; \
	  $(SUDO) apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q chromium >/dev/null; }; }
	@test -x $(CHROMIUM) || { echo "$(CHROMIUM) missing: install Debian's chromium package" >&2; exit 1; }

## Lint, then the whole test suite (unit, integration with the Firestore emulator, e2e,
## the console in a real browser).
test: $(STAMP) browser
	$(BIN)/ruff check src tests inference bench scripts
	$(BIN)/ruff format --check src tests inference bench scripts
	$(BIN)/lint-imports
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests inference bench scripts
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix src tests inference bench scripts
	$(BIN)/ruff format src tests inference bench scripts

## Regenerate README.md's configuration table and .env.example from the settings class.
config-table: $(STAMP)
	$(BIN)/python scripts/config_table.py --write

bench: $(STAMP)
	$(BIN)/python bench/api_latency.py

clean:
	rm -rf $(VENV) .visgate .pytest_cache .ruff_cache
