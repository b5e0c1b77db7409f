# The two commands: `make run` and `make test` (see README). Both start from `make setup`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
BUN_VERSION := 1.4.5
# bun from the npm registry (Reflex's own installer downloads from GitHub, unreachable here).
BUN_PACKAGE := $(shell grep -q avx2 /proc/cpuinfo && echo bun-linux-x64 || echo bun-linux-x64-baseline)
BUN := $(CURDIR)/tools/node_modules/@oven/$(BUN_PACKAGE)/bin/bun

export REFLEX_BUN_PATH := $(BUN)
export REFLEX_DIR := $(CURDIR)/.cache/reflex
export BUN_INSTALL_CACHE_DIR := $(CURDIR)/.cache/bun
export npm_config_cache := $(CURDIR)/.cache/npm
# The registry npm is configured with (bun's cache is keyed by it).
NPM_CONFIG_REGISTRY ?= $(shell npm config get registry 2>/dev/null)
ifneq ($(NPM_CONFIG_REGISTRY),)
export NPM_CONFIG_REGISTRY
endif
export REFLEX_TELEMETRY_ENABLED := false
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup setup-production setup-test lint run test test-unit test-integration test-e2e test-stripe bench clean messages translations

help:
	@echo "make run   - install what is missing, migrate, seed the demo, start the app, print launch links"
	@echo "make test  - install what is missing, lint, and run every test (unit, integration, end-to-end)"
	@echo "make lint  - ruff, the type checker and the dependency audit (part of make test)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Development and tests: runtime + dev requirements (localstripe, test and lint tools).
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(BUN):
	npm install --prefix tools --ignore-scripts --no-save --no-audit --no-fund @oven/$(BUN_PACKAGE)@$(BUN_VERSION)

# The compiled translation catalogues (built, not committed; README: "Translations").
LOCALE_DIR := billing_app/locale
TRANSLATIONS := $(LOCALE_DIR)/de/LC_MESSAGES/messages.mo
translations: $(TRANSLATIONS)
$(LOCALE_DIR)/%/LC_MESSAGES/messages.mo: $(LOCALE_DIR)/%/LC_MESSAGES/messages.po
	$(BIN)/pybabel compile --statistics -l $* -i $< -o $@

# After adding or changing a text: refresh messages.pot and each messages.po from the code, then
# translate the new (empty or fuzzy) entries; tests/unit/test_translations.py says what is missing.
messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k t --no-location --sort-output --omit-header \
		-o $(LOCALE_DIR)/messages.pot .
	$(BIN)/pybabel update -i $(LOCALE_DIR)/messages.pot -d $(LOCALE_DIR) --ignore-obsolete

# Babel (for the catalogues) comes with the requirements: compiled once they are installed.
setup: $(VENV)/.installed $(BUN)
	@$(MAKE) --no-print-directory translations

# Production: the runtime requirements only (no emulator, no test tools), and bun for the frontend build.
setup-production: $(BUN) | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@$(MAKE) --no-print-directory translations

# Browser tests drive Debian's Chromium (Playwright cannot download its own browser here);
# a CJK font lets the invoice PDF tests cover the fallback font, poppler-utils renders PDFs to PNG.
TEST_PACKAGES := chromium fonts-droid-fallback poppler-utils
setup-test: setup
	@missing=$$(for p in $(TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; fi

run: setup
	$(BIN)/billing-admin run

# With TEST_DATABASE_URL (a PostgreSQL server) and TEST_REDIS_URL set, the integration and
# E2E suites run a second time in production mode: PostgreSQL, Redis, several workers.
test: lint setup-test
	$(BIN)/python -m pytest tests
	@if [ -n "$$TEST_DATABASE_URL" ] && [ -n "$$TEST_REDIS_URL" ]; then \
		echo "== production mode: PostgreSQL + Redis + several app workers =="; \
		BILLING_TEST_PRODUCTION=1 $(BIN)/python -m pytest tests/integration tests/e2e; \
	fi

# ruff (lint and format check) over the repo, basedpyright over the Stripe gateway and the services (pyproject.toml),
# pip-audit over the pinned requirements (skipped with one line when its service does not answer).
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/basedpyright
	$(BIN)/python scripts/audit_requirements.py requirements.txt requirements-dev.txt

test-unit: setup
	$(BIN)/python -m pytest tests/unit

test-integration: setup
	$(BIN)/python -m pytest tests/integration

test-e2e: setup-test
	$(BIN)/python -m pytest tests/e2e

# The gateway against Stripe's own test mode (real API, test keys, test clocks for renewals).
test-stripe: setup
	@if [ -z "$$STRIPE_TEST_SECRET_KEY" ] || [ -z "$$STRIPE_TEST_PUBLISHABLE_KEY" ]; then \
		echo "make test-stripe: skipped (set STRIPE_TEST_SECRET_KEY and STRIPE_TEST_PUBLISHABLE_KEY to Stripe test keys)"; \
	else \
		$(BIN)/python -m pytest tests/stripe_test_mode; \
	fi

# Benchmarks: runs every bench/bench_*.py (each starts what it measures on its own 127.0.0.1 ports)
# and rewrites the latest run in docs/performance.md. Never part of `make test`. Debian's wrk makes
# the license API's load; its production setup uses this machine's PostgreSQL and Redis
# (BENCH_POSTGRES_URL, BENCH_REDIS_URL; without them those rows say "not measured").
BENCH_PACKAGES := wrk
bench: setup-test
	@missing=$$(for p in $(BENCH_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; fi
	$(BIN)/python bench/report.py

clean:
	rm -rf .web .states tools .cache
