# Two commands matter: `make run` and `make test`. Everything else is a step they depend on.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DDB_VERSION := 2.9.30
DDB_DIR := .local/dynamodb
DDB_JAR := $(DDB_DIR)/DynamoDBLocal.jar
LAYER_DIR := build/deps-layer
LAYER_STAMP := $(LAYER_DIR)/.stamp
LAMBDA_PYTHON := 3.13
PYTEST_WORKERS ?= 2
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export CDK_OUTDIR ?= cdk.out

.PHONY: run test unit synth bench lint openapi demo clean tools deps-layer ddb venv

run: venv ddb ## start DynamoDB Local + moto, provision, seed, serve the API on :3000
	$(PY) -m loyalty_local run

test: venv ddb deps-layer ## the whole suite, as CI runs it
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup

unit: venv ## domain tests only, no emulators
	$(PY) -m pytest tests/unit -q

synth: venv deps-layer ## synthesise the CDK app into cdk.out (no AWS account needed)
	cd infra && ../$(PY) app.py && echo "synthesised into infra/$(CDK_OUTDIR)"

bench: venv ddb ## print round trips, capacity, handler latency and cold-import figures
	$(PY) -m loyalty_local.bench

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

openapi: venv ## regenerate the committed OpenAPI document
	$(PY) -m loyalty.api.openapi > openapi.json

demo: venv ## load richer demo data into a running `make run`
	$(PY) -m loyalty_local.demo

venv: $(STAMP)
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "python3 is required"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

tools: ## install Java 17 / Node where missing (Debian; CI machines may be bare)
	@command -v java >/dev/null || { apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless; }
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }

ddb: $(DDB_JAR)
$(DDB_JAR):
	@$(MAKE) --no-print-directory tools
	rm -rf .local/ddb-pack && mkdir -p .local/ddb-pack $(DDB_DIR)
	cd .local/ddb-pack && npm pack --silent amplify-dynamodb-simulator@$(DDB_VERSION) >/dev/null
	tar -xzf .local/ddb-pack/amplify-dynamodb-simulator-$(DDB_VERSION).tgz -C .local/ddb-pack
	cp -r .local/ddb-pack/package/emulator/. $(DDB_DIR)/
	rm -rf .local/ddb-pack
	test -f $@

# The Lambda dependency layer, built for arm64 without Docker: binary wheels only.
deps-layer: $(LAYER_STAMP)
$(LAYER_STAMP): pyproject.toml | $(STAMP)
	rm -rf $(LAYER_DIR) && mkdir -p $(LAYER_DIR)/python
	$(PY) -c 'import tomllib;print("\n".join(d for d in tomllib.load(open("pyproject.toml","rb"))["project"]["dependencies"] if not d.startswith("boto3")))' > $(LAYER_DIR)/requirements.txt
	$(PY) -m pip install -q --platform manylinux2014_aarch64 --implementation cp \
		--python-version $(LAMBDA_PYTHON) --only-binary=:all: \
		--target $(LAYER_DIR)/python -r $(LAYER_DIR)/requirements.txt
	touch $@

clean:
	rm -rf $(VENV) build cdk.out infra/cdk.out .local .pytest_cache .mypy_cache .ruff_cache
