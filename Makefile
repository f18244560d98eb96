# allotment: `make run` starts the server, `make test` runs the whole suite. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install test-unit migration lint bench clean

# The console's third-party JS and CSS come from the npm registry (package-lock.json pins them); node_modules is
# served at /static/vendor/ and never committed.
$(STAMP): pyproject.toml package.json package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	npm ci --no-audit --no-fund
	touch $(STAMP)

# The scheduler core compiled with mypyc (allotment/compiled_core.py): built again whenever a core source changed;
# without a C compiler the script says so and the core runs from its sources.
CORE_EXT := build/core-ext/manifest.json
$(CORE_EXT): $(STAMP) $(wildcard src/allotment/core/*.py) scripts/build_core_ext.py
	$(BIN)/python scripts/build_core_ext.py

install: $(STAMP) $(CORE_EXT)

run: install
	$(BIN)/allot server

# The suite needs a PostgreSQL server; scripts/postgres.sh installs (Debian) and starts a throwaway one when absent.
test: install
	bash scripts/test.sh

test-unit: install
	bash scripts/ensure-package.sh bwrap bubblewrap "the local engine's job isolation"
	$(BIN)/pytest tests/unit

# Regenerate the schema migration from the models (development only; see CONTRIBUTING in README).
migration: $(STAMP)
	$(BIN)/python scripts/make_migration.py

lint: $(STAMP)
	$(BIN)/ruff check src tests

clean:
	rm -rf $(VENV) var build *.egg-info node_modules
