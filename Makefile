# seqhub — `make run` starts the platform, `make test` installs what it needs and runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: help install ops-tools js-deps run run-distributed test unit integration e2e slow lint bench system-deps rabbitmq dlq demo clean

help:
	@echo "make run              start the whole platform in one process on http://127.0.0.1:8080 (data in ./var)"
	@echo "make run-distributed  one process per service against RabbitMQ and the same database server"
	@echo "make test             install everything needed and run the whole test suite"
	@echo "make unit | integration | e2e | slow   one level of the suite"
	@echo "make lint             ruff and mypy"
	@echo "make demo             watch a run go from instrument to Beacon and RNAget answers (a few minutes)"
	@echo "make bench            run every benchmark (long; see docs/benchmarks.md)"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

system-deps:
	@scripts/system-deps.sh

rabbitmq: system-deps
	@scripts/ensure-rabbitmq.sh

# offline validators for deploy/ (promtool, checkov, hadolint, yamllint, prometheus-operator models; nodejs/npm)
ops-tools: install
	@bash deploy/tools/install-ops-tools.sh >/dev/null

# tus-js-client for the ingest protocol tests (locked in tests/integration/ingest/js/package-lock.json)
js-deps: ops-tools
	@test -d tests/integration/ingest/js/node_modules || npm ci --prefix tests/integration/ingest/js --silent --no-audit --no-fund

run: install
	$(BIN)/python -m services

run-distributed: install rabbitmq
	$(BIN)/python -m services --distributed

test: install system-deps rabbitmq ops-tools js-deps
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

unit: install
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

integration: install rabbitmq ops-tools js-deps
	$(BIN)/pytest tests/integration -m "not slow" $(PYTEST_ARGS)

e2e: install rabbitmq
	$(BIN)/pytest tests/e2e -m "not slow" $(PYTEST_ARGS)

slow: install rabbitmq
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy libs services

bench: install rabbitmq
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

dlq: install
	$(BIN)/seqhub admin dlq list

# a few minutes' tour: an instrument run in, Beacon and RNAget answers out, on the embedded platform
demo: install
	$(BIN)/python -m services.demo


clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
