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
# checkov pins boto3 1.35 (the platform needs 1.44+): it gets a venv of its own, from pyproject's
# `checkov` dependency group.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-stamp
LAMBDA_PYTHON := 3.13
PYTEST_WORKERS ?= 2
# How many set-up steps `make test` runs at once (downloads wait on the network, not the CPU).
SETUP_JOBS ?= 8
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export CDK_OUTDIR ?= cdk.out

.PHONY: help run test test-ready static workflow-template unit synth bench lint openapi demo clean tools deps-layer ddb venv checkov fuzz load invoke lake-shell console browser deploy-console

run: venv ddb deps-layer console ## start DynamoDB Local + moto, provision, seed, serve the API on :3000 (FAULTS=0.1: inject faults)
	LOYALTY_FAULT_RATE=$(FAULTS) $(PY) -m loyalty_local run

test: ## the whole suite, as CI runs it
	@$(MAKE) --no-print-directory -j$(SETUP_JOBS) --output-sync=target test-ready
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup

# Everything pytest needs, made SETUP_JOBS at a time: apt, pip and npm wait on their downloads while
# ruff, mypy and the workflows' synthesis use the CPU. Each step's output is printed when it ends.
test-ready: venv ddb deps-layer checkov console browser static workflow-template ## what `make test` needs before pytest, made in parallel

static: venv ## ruff and mypy over the project (as `make test` runs them)
	$(PY) -m ruff check .
	$(PY) -m mypy

# The template the local runtime executes the state machines from (loyalty_local.stepfunctions
# caches it in .local/cdk by its inputs' fingerprint): made here, the test workers find it ready.
workflow-template: venv deps-layer | tools ## synthesise the template the local runtime runs the state machines from
	$(PY) -c 'from loyalty_local.stepfunctions import synthesised_template; synthesised_template()'

# `make fuzz`: schemathesis over every operation of openapi.json, as tests/e2e/test_fuzz.py runs it
# in `make test`, but longer: FUZZ_EXAMPLES per operation, the coverage phase, the till's and the
# web shop's keys, one platform per worker. FUZZ_SEED=<n> for a seeded random run.
FUZZ_EXAMPLES ?= 200
fuzz: venv ddb ## fuzz every operation longer than `make test` does (FUZZ_EXAMPLES=200, FUZZ_SEED=)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_COVERAGE=1 FUZZ_KEYS=pos,web \
		$(PY) -m pytest tests/e2e/test_fuzz.py -n $(PYTEST_WORKERS) --dist load -q

unit: venv ## domain tests only, no emulators
	$(PY) -m pytest tests/unit -q

synth: venv deps-layer ## synthesise the CDK app into cdk.out (no AWS account needed)
	cd infra && ../$(PY) app.py && echo "synthesised into infra/$(CDK_OUTDIR)"

bench: venv ddb ## print round trips, capacity, handler latency and cold-import figures
	$(PY) -m tools.bench

# `make load`: locust drives a platform of its own (fresh table, free port) with a mixed workload,
# then the invariants are checked; exits 1 on any error or broken invariant.
LOAD_SECONDS ?= 60
LOAD_USERS ?= 16
load: venv ddb ## mixed load (LOAD_USERS=16 for LOAD_SECONDS=60), throughput, p50/p99, errors, invariants
	LOAD_SECONDS=$(LOAD_SECONDS) LOAD_USERS=$(LOAD_USERS) $(PY) -m tools.load

# `make invoke FN=customers EVENT=events/api-gateway-rest.json`: one handler, one event (a sample from
# events/ or your own), as `sam local invoke` would; against the running `make run` when there is one.
FN ?= health
EVENT ?= events/api-gateway-rest.json
invoke: venv ddb ## call one function's handler locally with an event file (FN=customers EVENT=events/<file>.json)
	$(PY) -m loyalty_local invoke $(FN) $(EVENT)

# `make lake-shell`: DuckDB over the running `make run`'s lake (moto's S3) with the reports' views;
# `make lake-shell LAKE_DIR=<folder>` opens a lake folder instead; SQL='select ...' runs one statement.
lake-shell: venv ## DuckDB over the local data lake with its views (LAKE_DIR=<folder>, SQL='<one statement>')
	$(PY) -m loyalty_local.lake_shell $(if $(LAKE_DIR),--dir $(LAKE_DIR)) $(if $(SQL),-c "$(SQL)")

lint: venv ## ruff, ruff format --check and mypy, as `make test` runs them first
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

openapi: venv ## regenerate the committed OpenAPI document
	$(PY) -m loyalty.api.openapi > openapi.json

# `make demo`: stores, customers, sales, returns, coupons, gift cards, offers and price groups, sent over
# the HTTP API of a running `make run` (PORT=3000) with the demo keys. Run it again: nothing doubles.
demo: venv ## load richer demo data into a running `make run` (PORT=3000), re-runnable
	PORT=$(or $(PORT),3000) $(PY) -m tools.demo

venv: $(STAMP) ## the project's virtualenv in .venv, with the dev dependencies
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "python3 is required"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# The only apt steps: `browser` waits for this one (two apt-gets at once fight over dpkg's lock).
tools: ## install Java 17 / Node where missing (Debian; CI machines may be bare)
	@command -v java >/dev/null || { apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless; }
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }

# The console (console/): Preact, htm and Chart.js bundled by esbuild from the committed lockfile
# into build/console, which `make run` serves at /console (S3 and CloudFront on AWS). No CDN at
# run time; the npm registry only at build time. axe-core comes with it for the browser tests.
CONSOLE_DIR := build/console
CONSOLE_MODULES := console/node_modules/.installed-stamp
console: $(CONSOLE_DIR)/index.html ## bundle the console into build/console (npm ci from the lockfile, esbuild)
$(CONSOLE_MODULES): console/package.json console/package-lock.json | tools
	cd console && npm ci --no-audit --no-fund --loglevel=error
	touch $@
$(CONSOLE_DIR)/index.html: $(CONSOLE_MODULES) console/build.mjs $(wildcard console/src/*)
	node console/build.mjs $(abspath $(CONSOLE_DIR))

# After `cdk deploy --all`: the built console into its bucket (the console stack's outputs name it)
# and a CloudFront invalidation. Needs AWS credentials; STAGE as deployed (default dev).
deploy-console: venv console ## upload build/console to the deployed console's bucket (STAGE=dev)
	$(PY) -m tools.deploy_console --stage $(or $(STAGE),dev) --dir $(abspath $(CONSOLE_DIR))

# The browser tests drive Debian's chromium with Playwright for Python (a dev dependency): a
# browser download of Playwright's own is neither needed nor possible here.
browser: | tools ## install Debian's chromium for the browser tests where missing
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

checkov: $(CHECKOV_STAMP) ## checkov in its own venv (the infra tests run it on the synthesised template)
$(CHECKOV_STAMP): pyproject.toml
	test -d $(CHECKOV_VENV) || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install -q --group checkov
	touch $@

ddb: $(DDB_JAR) ## download DynamoDB Local into .local/dynamodb
$(DDB_JAR): | tools
	rm -rf .local/ddb-pack && mkdir -p .local/ddb-pack $(DDB_DIR)
	cd .local/ddb-pack && npm pack --silent amplify-dynamodb-simulator@$(DDB_VERSION) >/dev/null
	tar -xzf .local/ddb-pack/amplify-dynamodb-simulator-$(DDB_VERSION).tgz -C .local/ddb-pack
	cp -r .local/ddb-pack/package/emulator/. $(DDB_DIR)/
	rm -rf .local/ddb-pack
	test -f $@

# The Lambda dependency layer, built for arm64 without Docker: binary wheels only.
deps-layer: $(LAYER_STAMP) ## build the Lambda dependency layer (arm64 wheels) into build/
# Lambda's python3.13 runtime is Amazon Linux 2023 (glibc 2.34): wheels tagged up to manylinux_2_34
# run there; pip matches --platform tags exactly, and duckdb's aarch64 wheels are manylinux_2_28.
# --no-compile: this pip's Python is not Lambda's, its .pyc would be dead weight (the asset skips them).
$(LAYER_STAMP): pyproject.toml | $(STAMP)
	rm -rf $(LAYER_DIR) && mkdir -p $(LAYER_DIR)/python
	$(PY) -c 'import tomllib;print("\n".join(d for d in tomllib.load(open("pyproject.toml","rb"))["project"]["dependencies"] if not d.startswith("boto3")))' > $(LAYER_DIR)/requirements.txt
	$(PY) -m pip install -q --no-compile --platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 --implementation cp \
		--python-version $(LAMBDA_PYTHON) --only-binary=:all: \
		--target $(LAYER_DIR)/python -r $(LAYER_DIR)/requirements.txt
	touch $@

clean: ## remove the venvs, build output, emulator data and caches
	rm -rf $(VENV) $(CHECKOV_VENV) build console/node_modules cdk.out infra/cdk.out .local .pytest_cache .mypy_cache .ruff_cache

help: ## list every target with its one-line description
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
