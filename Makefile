# cdrapi — `make run` serves a demo database; `make test` runs every check CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DB := sqlite:///cdrapi.db

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
	@test -f cdrapi.db || $(BIN)/cdrapi demo --db $(DB) --calls 300000 \
		--days $$(( ($$(date +%s) - $$(date -d 2023-12-01 +%s)) / 86400 + 1 ))
	@test -f .cdrapi-token || $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(24))" > .cdrapi-token
	CDRAPI_API_TOKEN="$${CDRAPI_API_TOKEN:-$$(cat .cdrapi-token)}" \
		$(BIN)/cdrapi serve --db $(DB) --host 127.0.0.1 --port 8080

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
