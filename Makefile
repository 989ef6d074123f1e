# Convertly — run `make help` for the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
# Empty: `convertly serve` takes CONVERTLY_PORT / CONVERTLY_HOST (environment or .env), else
# 8000 on 127.0.0.1. `make run PORT=8123` overrides them.
PORT ?=
HOST ?=
PY := $(VENV)/bin/python
# System tools the service uses, as command:debian-package pairs; installed when missing.
SYSTEM_DEPS ?= redis-server:redis-server docker-compose:docker-compose \
	ffmpeg:ffmpeg ffprobe:ffmpeg unar:unar lsar:unar gs:ghostscript \
	chromium:chromium curl:curl openssl:openssl

.PHONY: help setup run serve test test-fast lint check bench clean

help: ## show this help
	@grep -hE '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  make %-9s %s\n", $$1, $$2}'
	@echo "  variables: PORT and HOST for make run (default: CONVERTLY_PORT and CONVERTLY_HOST, else 8000 on 127.0.0.1), CONVERTLY_DATA_DIR=$${CONVERTLY_DATA_DIR:-./data}"

setup: $(VENV)/.installed ## create .venv and install everything needed

$(VENV)/.installed: pyproject.toml scripts/ensure-system.sh
	@bash scripts/ensure-system.sh "$(PYTHON)" $(SYSTEM_DEPS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

run: setup ## serve the API on PORT (default 8000), embedded mode, data in ./data
	$(VENV)/bin/convertly serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

serve: run

test: setup ## run the whole test suite
	$(PY) -m pytest -q

test-fast: setup ## the tests not marked slow (tests/conftest.py), in under two minutes
	$(PY) -m pytest -q -m "not slow"

lint: setup ## ruff, mypy --strict and the import contracts (lint-imports)
	$(VENV)/bin/ruff check convertly workers tests bench
	$(VENV)/bin/mypy convertly workers
	$(VENV)/bin/lint-imports --no-logo

check: lint test ## lint, type-check and test

bench: setup ## benchmarks (README: Performance); prints a table, writes bench/out/
	$(PY) -m bench.run

clean: ## remove the virtualenv and caches (keeps ./data)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache bench/out
