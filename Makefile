# hazmon: the two commands a new user needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test services install lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## services: install and start Mosquitto and PostgreSQL 15 + TimescaleDB (root, idempotent)
services:
	bash scripts/services.sh up

## demo: services up, migrate, then the demo (a crane overload, alerts printed as they open)
demo: services install
	$(BIN)/hazmon migrate
	$(BIN)/hazmon demo

## test: services up, lint and type-check, then the whole test suite against the real services
test: services install lint
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## bench: the rule engine and ingest benchmarks (minutes; not part of `make test`)
bench: services install
	$(BIN)/python bench/rules_bench.py
	$(BIN)/python bench/ingest_bench.py ceilings drain sustained latency --runs 3

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
