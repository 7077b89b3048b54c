# The README's two commands: `make run` and `make test`. Both install what is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export POETRY_VIRTUALENVS_IN_PROJECT := true
export POETRY_NO_INTERACTION := 1
PYTHON ?= $(shell command -v python3.12 2>/dev/null || command -v python3)
TOOLS := .tools
POETRY := $(TOOLS)/bin/poetry
VENV := .venv
INSTALLED := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help install run serve test lint bench services clean

help:
	@echo "make run   - install, migrate and serve Marquee on http://$(HOST):$(PORT) (SQLite, no Redis)"
	@echo "make test  - install and run the whole test suite (starts PostgreSQL and Redis if down)"
	@echo "make lint  - pre-commit on every file"
	@echo "make bench - benchmarks under bench/"

$(POETRY):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check 'poetry>=2.0,<3'

$(INSTALLED): $(POETRY) pyproject.toml poetry.lock
	$(POETRY) env use $(PYTHON) >/dev/null
	$(POETRY) sync --with dev --all-extras
	@touch $@

install: $(INSTALLED)

run: install
	$(VENV)/bin/marquee migrate
	$(VENV)/bin/marquee run --host $(HOST) --port $(PORT)

serve: install
	$(VENV)/bin/marquee migrate
	$(VENV)/bin/marquee serve --host $(HOST) --port $(PORT)

services:
	@bash scripts/ensure-services

test: install services
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/pre-commit run --all-files

# bench/_*.py are helpers, not benchmarks.
bench: install services
	@for script in bench/[!_]*.py; do \
		echo "== $$script"; began=$$SECONDS; \
		$(VENV)/bin/python $$script || exit 1; \
		echo "== $$script took $$((SECONDS - began)) s"; \
	done

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache
