# Each target sets itself up: a fresh machine needs only python3 (3.11+), node 20 and npm.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp

.PHONY: setup demo test lint bench clean

setup: $(STAMP) $(NODE_STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	$(PY) -m registrar demo

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -n 2

lint: setup
	$(PY) -m ruff check .

bench: setup
	$(PY) bench/intake.py

clean:
	rm -rf $(VENV) node_modules build .pytest_cache .hypothesis
