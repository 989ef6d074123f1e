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

.PHONY: help setup run serve test test-fast lint check bench bench-compress lock clean

help: ## show this help
	@grep -hE '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  make %-9s %s\n", $$1, $$2}'
	@echo "  variables: PORT and HOST for make run (default: CONVERTLY_PORT and CONVERTLY_HOST, else 8000 on 127.0.0.1), CONVERTLY_DATA_DIR=$${CONVERTLY_DATA_DIR:-./data}"

setup: $(VENV)/.installed ## create .venv and install everything needed

# The exact versions of requirements-dev.lock, every download checked against its hash; then
# the project and its Python client (clients/python), editable.
$(VENV)/.installed: pyproject.toml clients/python/pyproject.toml requirements-dev.lock scripts/ensure-system.sh
	@bash scripts/ensure-system.sh "$(PYTHON)" $(SYSTEM_DEPS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(PY) -m pip install --quiet --no-deps -e ./clients/python -e .
	@# Helm's own lint for tests/deploy/test_helm.py (no helm binary in Debian). The wheel holds
	@# Helm as a shared library and says Python 3.12, but loads on 3.11 (cffi, in the lock).
	$(PY) -m pip install --quiet --no-deps --ignore-requires-python 'helm-sdkpy==0.1.32'
	@touch $@

run: setup ## serve the API on PORT (default 8000), embedded mode, data in ./data
	$(VENV)/bin/convertly serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

serve: run

test: setup ## run the whole test suite
	$(PY) -m pytest -q --durations=25

test-fast: setup ## the tests not marked slow (tests/conftest.py), in under two minutes
	$(PY) -m pytest -q -m "not slow"

lint: setup ## ruff, mypy --strict and the import contracts (lint-imports)
	$(VENV)/bin/ruff check convertly workers tests bench clients/python
	$(VENV)/bin/mypy convertly workers clients/python/src/convertly_client
	$(VENV)/bin/lint-imports --no-logo

check: lint test ## lint, type-check and test

bench: setup ## benchmarks (README: Performance); prints a table, writes bench/out/
	$(PY) -m bench.run

bench-compress: setup ## compress before/after on a photo set: sizes and SSIM (bench/compression.py)
	$(PY) -m bench.compression

# uv resolves for Python 3.11 on every platform (--universal), with the hash of every file.
LOCK := $(VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes
# The client package comes from this checkout (clients/python): resolved from there, its own
# dependencies pinned, itself left out of the locks (setup and the image install it --no-deps).
LOCAL := --override $(VENV)/local-packages.txt --no-emit-package convertly-client
lock: ## re-pin requirements-dev.lock and deploy/requirements.lock from pyproject.toml
	@test -x $(VENV)/bin/uv || $(PY) -m pip install --quiet 'uv>=0.9'
	@echo "convertly-client @ file://$(CURDIR)/clients/python" > $(VENV)/local-packages.txt
	$(LOCK) $(LOCAL) pyproject.toml --extra dev -o requirements-dev.lock
	$(LOCK) $(LOCAL) pyproject.toml deploy/requirements.in -o deploy/requirements.lock

clean: ## remove the virtualenv and caches (keeps ./data)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache bench/out
