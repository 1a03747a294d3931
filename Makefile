# coreadmin: `make run` runs the service, `make test` runs the suite. Both install first.
# Neither needs DATABASE_URL / REDIS_URL: unset, they start embedded Postgres and Redis
# (python -m coreadmin.devstack; see README.md).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.13 2>/dev/null || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: install chromium run demo test lint fmt bench soak lock clean-data

install: $(STAMP)

# The browser tests drive Debian's chromium (Playwright cannot download its own here).
chromium:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

# The virtualenv with exactly the locked packages; redone when the lock or pyproject changes.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c 'import sys; assert sys.version_info >= (3, 12), "coreadmin needs Python 3.12+ (3.13 preferred)"'
	$(VENV)/bin/pip install -q --disable-pip-version-check uv==0.13.9
	$(VENV)/bin/uv pip sync -q --python $(PY) requirements.lock
	$(VENV)/bin/uv pip install -q --python $(PY) --no-deps -e client
	@rm -f $(VENV)/.installed-*
	@touch $@

lock:
	$(VENV)/bin/uv pip compile -q pyproject.toml --extra dev --python-version 3.13 \
		--override overrides.txt -o requirements.lock

# Web (gunicorn), Celery worker and beat in the foreground; Ctrl-C stops everything.
run: install
	$(PY) -m coreadmin.devstack run

# `make run` plus a simulated fleet of SCRAPERS scrapers (apps/fleet/simulator): a living
# dashboard within a minute. Ctrl-C stops the fleet (which prints its reconciliation) first.
SCRAPERS ?= 4
demo: install
	$(PY) -m coreadmin.devstack run --simulate $(SCRAPERS)

# The whole suite on two xdist workers; pytest's exit code is make's (5, no tests, fails).
test: install chromium
	$(PY) -m coreadmin.devstack test -- -n 2 $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy coreadmin apps bench
	cd client && ../$(VENV)/bin/mypy coreadmin_client  # strict, by client/pyproject.toml

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) -m bench

# Open-loop soak at 70% of the measured peak; report in test-artifacts/soak-*.md.
MINUTES ?= 1
soak: install
	MINUTES=$(MINUTES) $(PY) -m bench.soak

# Forget the embedded servers' data (the demo operator and key are made anew next run).
clean-data:
	rm -rf .data
