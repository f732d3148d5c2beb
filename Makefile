# rtfin — one command sets up and runs the demo (make demo), one runs the tests (make test).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RTFIN := $(VENV)/bin/rtfin
export PIP_CACHE_DIR := $(CURDIR)/.cache/pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup setup-python setup-jars setup-superset setup-chromium setup-tmux test test-unit test-fast lint actionlint format bench demo clean

## setup: virtualenv + package + Java artifacts + Superset + Chromium (idempotent; fast when already done)
setup: setup-python setup-jars setup-superset setup-chromium setup-tmux

setup-python: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip wheel setuptools
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $@

setup-jars: $(VENV)/.installed
	$(PY) -m rtfin_cli.local.jars .cache

# Superset 6.x in its own virtualenv (it pins SQLAlchemy 1.4): `rtfin local superset start` runs it
SUPERSET_VENV := .cache/venvs/superset
setup-superset: $(SUPERSET_VENV)/.installed

$(SUPERSET_VENV)/.installed: rtfin_cli/local/superset-requirements.txt
	test -x $(SUPERSET_VENV)/bin/python || $(PYTHON) -m venv $(SUPERSET_VENV)
	$(SUPERSET_VENV)/bin/pip install -q -U pip wheel setuptools
	$(SUPERSET_VENV)/bin/pip install -q -r rtfin_cli/local/superset-requirements.txt
	touch $@

# Debian's chromium for the dashboard screenshot (headless); apt-get as root (CI), else sudo -n
setup-chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends chromium fonts-dejavu-core >/dev/null; }

# tmux: the `rtfin lag` live-view test drives the real terminal UI in a tmux pane (capture-pane)
setup-tmux:
	@command -v tmux >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends tmux >/dev/null; }

## test: every test tier this machine can run (unit, integration, e2e, slow)
test: setup
	$(PY) -m pytest tests

test-unit: setup-python
	$(PY) -m pytest tests -m unit

## test-fast: everything but the slow tier
test-fast: setup
	$(PY) -m pytest tests -m "not slow"

## lint: ruff, mypy, the import-linter layer contracts (pyproject.toml) and actionlint (.github/workflows)
lint: setup-python actionlint
	$(VENV)/bin/ruff check rtfin_cli tests jobs
	$(VENV)/bin/ruff format --check rtfin_cli tests jobs
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# actionlint from the Go module proxy, built once into .cache/go (uses shellcheck on run: steps if installed)
ACTIONLINT_VERSION := v1.7.12
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
GOENV := GOPATH=$(CURDIR)/.cache/go GOMODCACHE=$(CURDIR)/.cache/go/mod GOCACHE=$(CURDIR)/.cache/go/build \
	GOBIN=$(CURDIR)/.cache/go/bin GOFLAGS="-modcacherw -buildvcs=false"
ACTIONLINT := .cache/go/bin/actionlint

$(ACTIONLINT).$(ACTIONLINT_VERSION):
	$(GOENV) $(GO) install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
	touch $@

actionlint: $(ACTIONLINT).$(ACTIONLINT_VERSION)
	$(ACTIONLINT) -no-color

format: setup-python
	$(VENV)/bin/ruff format rtfin_cli tests jobs
	$(VENV)/bin/ruff check --fix rtfin_cli tests jobs

bench: setup
	$(PY) -m bench

## demo: the whole pipeline on this machine, dashboard included; a second run reuses what runs
demo: setup
	$(RTFIN) local up --with-dashboard
	@echo "(rtfin is $(RTFIN): 'source $(VENV)/bin/activate' to type the commands above as shown)"

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
