# Each target sets itself up: a fresh machine needs only python3 (3.11+), node 20 and npm.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp
# The hash walk in C (native/): optional, intake falls back to the same walk in Python without a compiler.
NATIVE_STAMP := build/native/.built-stamp

.PHONY: setup browser demo test lint infra-check bench bench-sweep clean

setup: $(STAMP) $(NODE_STAMP) $(NATIVE_STAMP)

# checkov has its own dependency pins: it gets its own environment so the app's stay as declared.
$(INFRA_STAMP): requirements-infra.txt
	test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(INFRA_VENV)/bin/python -m pip install --quiet -r requirements-infra.txt
	touch $@

$(STAMP): requirements.txt requirements-dev.txt requirements-worker.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --ignore-requires-python -r requirements-worker.txt
	touch $@

# native/build.py writes the stamp only when the build worked: a compiler installed later is used.
$(NATIVE_STAMP): native/hwwalk.c native/build.py $(STAMP)
	$(PY) native/build.py

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The browser tests (tests/browser/) drive Debian's Chromium through its chromedriver; install them when
# missing (apt-get as root, as on the CI machine; otherwise through sudo).
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

demo: setup
	$(PY) -m registrar demo

test: setup $(INFRA_STAMP) browser
	$(PY) -m ruff check .
	$(INFRA_VENV)/bin/python infra/check.py
	$(PY) -m pytest -n 2

infra-check: $(INFRA_STAMP)
	$(INFRA_VENV)/bin/python infra/check.py

lint: setup
	$(PY) -m ruff check .

bench: setup
	$(PY) bench/intake.py

# The upload sweep's storage calls and time with 0 and with 100,000 processed uploads (about 3 minutes).
bench-sweep: setup
	$(PY) bench/sweep.py

clean:
	rm -rf $(VENV) $(INFRA_VENV) node_modules build .pytest_cache .hypothesis shared/intake/_hwwalk*.so
