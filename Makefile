# Two commands for a newcomer: `make run` and `make test`. Each sets itself up from the pinned files.
# Every requirements*.txt (and the layer's) is compiled from its .in file by `make lock`: each package
# pinned with its hashes, pip and setuptools included, and pip installs nothing that does not match.
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
CHECKS_VENV := .venv-checks
READY := $(VENV)/.ready
SAM_READY := $(SAM_VENV)/.ready
CHECKS_READY := $(CHECKS_VENV)/.ready
PIP_INSTALL = bin/pip install --quiet --disable-pip-version-check --require-hashes
PIP_FIRST = bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-pip.txt
export SAM_CLI_TELEMETRY := 0

.PHONY: run test reliability bench lint typecheck validate layer-size unit integration build lock clean screenshots

# The console's browser tests drive Debian's Chromium, never a browser Playwright downloads. make test
# installs it when it is missing (apt-get, as root: CI's clean clone); anyone else is told how.
CHROMIUM := /usr/bin/chromium
export CHROMIUM
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

# The functions' runtime, python3.13, builds them and compiles the layer's bytecode (layers/common/Makefile).
# pyenv's shim runs it only where PYENV_VERSION names it: named after the default, python3 stays the default.
PYENV_DEFAULT := $(shell pyenv version-name 2>/dev/null)
PYENV_RUNTIME := $(notdir $(lastword $(wildcard $(HOME)/.pyenv/versions/3.13.*)))
ifeq ($(origin PYENV_VERSION)$(if $(PYENV_DEFAULT),,none)$(if $(PYENV_RUNTIME),,none),undefined)
export PYENV_VERSION := $(PYENV_DEFAULT):$(PYENV_RUNTIME)
endif

$(READY): requirements-pip.txt requirements-dev.txt layers/common/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/$(PIP_FIRST)
	$(VENV)/$(PIP_INSTALL) -r requirements-dev.txt
	$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# SAM CLI pins boto3 and click versions of its own, so it gets a virtual environment of its own.
$(SAM_READY): requirements-pip.txt requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/$(PIP_FIRST)
	$(SAM_VENV)/$(PIP_INSTALL) -r requirements-sam.txt
	touch $@

# cfn-lint with the serverless rules, and checkov (which pins a boto3 older than SAM CLI's and ours).
$(CHECKS_READY): requirements-pip.txt requirements-checks.txt
	$(PYTHON) -m venv $(CHECKS_VENV)
	$(CHECKS_VENV)/$(PIP_FIRST)
	$(CHECKS_VENV)/$(PIP_INSTALL) -r requirements-checks.txt
	touch $@

run: $(READY)
	$(VENV)/bin/python -m devserver

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's chromium for the browser tests (apt-get)"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; \
	else \
		echo "The browser tests need Debian's chromium at $(CHROMIUM), and only root can install it:" >&2; \
		echo "  sudo apt-get install --no-install-recommends chromium   (then make test again)" >&2; \
		exit 1; \
	fi
	@test -x $(CHROMIUM) || (echo "apt-get installed no $(CHROMIUM)" >&2; exit 1)

test: lint typecheck validate layer-size $(CHROMIUM)
	$(VENV)/bin/pytest -n auto --dist loadfile

lint: $(READY)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(READY)
	$(VENV)/bin/mypy

# The template, by three tools; zero findings, and every exception is written in template.yaml next to
# its reason (`# checkov:skip=ID:reason`, or a cfn-lint Metadata ignore_checks entry under a comment).
# checkov judges conditional resources with the parameters' defaults, so it also reads a copy of the
# template with every optional part (custom domain, CloudFront) switched on.
validate: $(SAM_READY) $(CHECKS_READY)
	$(SAM_VENV)/bin/sam validate --lint --region eu-central-1
	$(CHECKS_VENV)/bin/cfn-lint --regions eu-central-1 --append-rules cfn_lint_serverless.rules -- template.yaml
	$(CHECKS_VENV)/bin/python checks/every_option.py template.yaml .aws-sam/checks/template-every-option.yaml
	for template in template.yaml .aws-sam/checks/template-every-option.yaml; do \
		BC_SKIP_MAPPING=TRUE $(CHECKS_VENV)/bin/checkov --quiet --compact --skip-download \
			--framework cloudformation --file $$template || exit 1; \
	done

# The layer as `sam build` makes it (from the hash-locked requirements), measured unzipped against half of
# Lambda's 250 MB for a function and its layers together. Its bytecode (about 8 MB) is compiled where
# python3.13 runs (pyenv's is named above, as `make build` needs); the line printed counts the .pyc.
LAYER_LIMIT_MB := 125
layer-size: $(SAM_READY)
	@mkdir -p .aws-sam
	$(SAM_VENV)/bin/sam build CommonLayer --cached --build-dir .aws-sam/layer-check \
		--cache-dir .aws-sam/layer-check-cache > .aws-sam/layer-check.log 2>&1 || (cat .aws-sam/layer-check.log; exit 1)
	@size=$$(du -sb .aws-sam/layer-check/CommonLayer | cut -f1); \
	compiled=$$(find .aws-sam/layer-check/CommonLayer -name '*.pyc' | wc -l); \
	echo "CommonLayer unzipped: $$((size / 1000000)) MB (limit $(LAYER_LIMIT_MB) MB), $$compiled .pyc"; \
	test $$size -le $$(($(LAYER_LIMIT_MB) * 1000000))

# The reliability checks at full size (make test runs them small): hostile input and fuzzing, fault
# injection at every write of an import, concurrency and a load run, tenants and logs. Prints a table.
reliability: $(READY)
	RELIABILITY_FULL=1 $(VENV)/bin/pytest tests/reliability -q

# The reference workload (a big and a typical clinic) against moto's server, or DYNAMODB_ENDPOINT_URL's
# store; prints every figure beside its baseline. About 7 minutes here.
bench: $(READY)
	$(VENV)/bin/python -m bench

# Screenshots of every console page for the README (docs/console/*.png), from a local server filled with the
# seed's sample, a partial import and a booking, in Debian's Chromium.
screenshots: $(READY) $(CHROMIUM)
	$(VENV)/bin/python -m tests.browser.screenshots docs/console

unit: $(READY)
	$(VENV)/bin/pytest tests/unit

integration: $(READY)
	$(VENV)/bin/pytest tests/integration

# Needs python3.13 (on PATH, or pyenv's: see PYENV_VERSION above), or add --use-container with Docker.
build: $(SAM_READY)
	$(SAM_VENV)/bin/sam build

# Recompiles every lock from its .in file after a change there (or to take newer versions: delete the
# .txt first). Needs PyPI. The layer's lock is compiled first: the dev lock is constrained to it.
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet --generate-hashes \
	--allow-unsafe --no-strip-extras --no-emit-find-links --no-emit-index-url --no-emit-trusted-host
lock: $(READY)
	$(PIP_COMPILE) -o layers/common/requirements.txt layers/common/requirements.in
	$(PIP_COMPILE) -o requirements-dev.txt requirements-dev.in
	$(PIP_COMPILE) -o requirements-sam.txt requirements-sam.in
	$(PIP_COMPILE) -o requirements-checks.txt requirements-checks.in

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKS_VENV) .aws-sam .mypy_cache .pytest_cache .ruff_cache
