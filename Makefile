# Two commands for a newcomer: `make run` and `make test`. Each sets itself up from the pinned files.
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
READY := $(VENV)/.ready
SAM_READY := $(SAM_VENV)/.ready
export SAM_CLI_TELEMETRY := 0

.PHONY: run test reliability bench lint typecheck validate unit integration build clean

$(READY): requirements-dev.txt layers/common/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

# SAM CLI pins boto3 and click versions of its own, so it gets a virtual environment of its own.
$(SAM_READY): requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r requirements-sam.txt
	touch $@

run: $(READY)
	$(VENV)/bin/python -m devserver

test: lint typecheck validate
	$(VENV)/bin/pytest -n auto --dist loadfile

lint: $(READY)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(READY)
	$(VENV)/bin/mypy

validate: $(SAM_READY)
	$(SAM_VENV)/bin/sam validate --lint --region eu-central-1

# The reliability checks at full size (make test runs them small): hostile input and fuzzing, fault
# injection at every write of an import, concurrency and a load run, tenants and logs. Prints a table.
reliability: $(READY)
	RELIABILITY_FULL=1 $(VENV)/bin/pytest tests/reliability -q

# The reference workload (a big and a typical clinic) against moto's server, or DYNAMODB_ENDPOINT_URL's
# store; prints every figure beside its baseline. About 7 minutes here.
bench: $(READY)
	$(VENV)/bin/python -m bench

unit: $(READY)
	$(VENV)/bin/pytest tests/unit

integration: $(READY)
	$(VENV)/bin/pytest tests/integration

# Needs python3.13 on PATH (the functions' runtime), or add --use-container with Docker.
build: $(SAM_READY)
	$(SAM_VENV)/bin/sam build

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .mypy_cache .pytest_cache .ruff_cache
