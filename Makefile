# Two commands for a newcomer: `make run` and `make test` (see README.md).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app webapp.app
PORT   ?= 5000
CATALOGS := $(patsubst %.po,%.mo,$(wildcard translations/*/LC_MESSAGES/messages.po))

export PORT

.PHONY: run test audit lint translations extract-messages clean

# npm writes this file on every install: it stands for audit/node_modules being current.
AUDIT_TOOLS := audit/node_modules/.package-lock.json

## make run: install into .venv, migrate, load the demo data, serve with the mail worker beside it
run: $(VENV)/.installed $(CATALOGS)
	$(FLASK) db upgrade
	$(FLASK) demo load
	$(FLASK) invoices archive
	@echo "Autofactura on http://127.0.0.1:$(PORT) (Ctrl-C stops the server and the mail worker)"
	@DEV_MAILBOX=$${DEV_MAILBOX-1}; export DEV_MAILBOX; \
	$(FLASK) mail worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(FLASK) run --host 127.0.0.1 --port $(PORT)

## make test: the whole suite on SQLite, then on a temporary PostgreSQL server, with Chromium
test: $(VENV)/.installed-dev $(CATALOGS) $(AUDIT_TOOLS)
	./scripts/ensure_system_packages.sh
	$(BIN)/ruff check .
	$(BIN)/lint-imports
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

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

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
