# Two commands for a newcomer: `make run` and `make test` (see README.md).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app webapp.app
PORT   ?= 5000
CATALOGS := $(patsubst %.po,%.mo,$(wildcard translations/*/LC_MESSAGES/messages.po))

export PORT

.PHONY: run test audit lint lock advisories translations extract-messages clean

# Installs come from the lock files, every version pinned with its hashes (README "Locked
# dependencies"): requirements.lock for the app (and the redis client), requirements-dev.lock
# for that plus the development tools. `make lock` writes both from pyproject.toml.
PIP  := $(BIN)/pip --quiet --disable-pip-version-check
LOCK := $(BIN)/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 \
        --generate-hashes --no-strip-extras --custom-compile-command 'make lock'

# npm writes this file on every install: it stands for audit/node_modules being current.
AUDIT_TOOLS := audit/node_modules/.package-lock.json

## make run: install into .venv, then one process migrates, loads the demo data and serves
## with the mail worker beside it (`flask demo serve`)
run: $(VENV)/.installed $(CATALOGS)
	@DEV_MAILBOX=$${DEV_MAILBOX-1} $(FLASK) demo serve --host 127.0.0.1 --port $(PORT)

## make test: the whole suite on SQLite, then on a temporary PostgreSQL server, with Chromium
test: $(VENV)/.installed-dev $(CATALOGS) $(AUDIT_TOOLS)
	./scripts/ensure_system_packages.sh
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python scripts/audit_dependencies.py
	@echo "== Test suite on SQLite =="
	$(BIN)/python -m pytest -n auto
	@echo "== Test suite on PostgreSQL =="
	$(BIN)/python scripts/with_postgres.py -- $(BIN)/python -m pytest -n auto

## make audit: the audits of make test (axe-core, Nu Html Checker), then Lighthouse
audit: $(VENV)/.installed-dev $(CATALOGS) $(AUDIT_TOOLS)
	./scripts/audit.sh

# axe-core, vnu-jar and lighthouse from npm, the versions of audit/package-lock.json
$(AUDIT_TOOLS): audit/package.json audit/package-lock.json
	./scripts/ensure_system_packages.sh
	npm ci --prefix audit --no-audit --no-fund
	@touch $@

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/ruff format --check webapp tests scripts bench migrations/env.py

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/python
	$(PIP) install --require-hashes -r requirements.lock
	$(PIP) install --no-deps -e .
	@touch $@

$(VENV)/.installed-dev: requirements-dev.lock $(VENV)/.installed
	$(PIP) install --require-hashes -r requirements-dev.lock
	@touch $@

## make lock: pin pyproject.toml's dependencies in the lock files (the pins there are kept;
## LOCK_FLAGS=--upgrade moves every one to its newest release, --upgrade-package NAME one)
lock: $(VENV)/.installed-dev
	$(LOCK) --all-extras -o requirements-dev.lock $(LOCK_FLAGS)
	$(LOCK) --extra redis -c requirements-dev.lock -o requirements.lock

## make advisories: refresh audit/pypi-advisories.json from OSV's export of PyPI's advisories
ADVISORIES_URL ?= https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip
advisories: $(VENV)/.installed-dev
	$(BIN)/python scripts/audit_dependencies.py refresh $(ADVISORIES_URL)

translations: $(CATALOGS)

%.mo: %.po $(VENV)/.installed
	$(BIN)/pybabel compile -i $< -o $@

## make extract-messages: refresh translations/messages.pot and merge it into the catalogs
extract-messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k N_ --no-location --sort-output \
	    -o translations/messages.pot .
	$(BIN)/pybabel update -i translations/messages.pot -d translations \
	    --ignore-obsolete --no-fuzzy-matching

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .import_linter_cache audit/node_modules
