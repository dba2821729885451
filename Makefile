# cdrapi — `make run` serves a demo database; `make test` runs every check CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `make run`'s demo: where it lives and what it serves (override for a second demo:
# make run DB_FILE=/tmp/demo.db RECORDINGS=/tmp/rec STATE=/tmp PORT=8090 DEMO_CALLS=5000).
DB_FILE ?= cdrapi.db
DB := sqlite:///$(DB_FILE)
RECORDINGS ?= recordings
STATE ?= .
HOST ?= 127.0.0.1
PORT ?= 8080
DEMO_CALLS ?= 300000
AUDIO_DAYS ?= 7
TOKEN_FILE := $(STATE)/.cdrapi-token
ADMIN_FILE := $(STATE)/.cdrapi-admin-password

.PHONY: setup run test lint bench clean

$(BIN)/cdrapi: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/cdrapi

run: setup
	@# The demo runs from December 2023 to today, so the vendor example's period
	@# (2024-01-01 .. 2024-01-15, examples/vendor_client.php) has calls in it.
	@# Its last days' recordings get playable audio under $(RECORDINGS).
	@test -f $(DB_FILE) || $(BIN)/cdrapi demo --db $(DB) --calls $(DEMO_CALLS) \
		--days $$(( ($$(date +%s) - $$(date -d 2023-12-01 +%s)) / 86400 + 1 )) \
		--recordings-dir $(RECORDINGS) --audio-days $(AUDIO_DAYS)
	@test -f $(TOKEN_FILE) || $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(24))" > $(TOKEN_FILE)
	@# A newcomer is signed in: an admin web account with a generated password, made once.
	@$(BIN)/cdrapi user list --db $(DB) | grep -q '^admin ' || { \
		(umask 077; $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(12))" > $(ADMIN_FILE)) && \
		$(BIN)/cdrapi user add admin --admin --password-stdin --db $(DB) < $(ADMIN_FILE) > /dev/null; }
	@if test -f $(ADMIN_FILE); then \
		echo "Sign in at http://$(HOST):$(PORT)/ as admin, password $$(cat $(ADMIN_FILE))"; \
	else echo "Sign in at http://$(HOST):$(PORT)/ as admin (cdrapi user passwd admin --db $(DB) to set a password)"; fi
	CDRAPI_API_TOKEN="$${CDRAPI_API_TOKEN:-$$(cat $(TOKEN_FILE))}" \
		CDRAPI_RECORDINGS_DIR="$${CDRAPI_RECORDINGS_DIR:-$(RECORDINGS)}" \
		$(BIN)/cdrapi serve --db $(DB) --host $(HOST) --port $(PORT)

lint: setup
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/mypy --strict src

test: lint
	$(BIN)/pytest -q

bench: setup
	$(BIN)/python bench/api_speed.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
