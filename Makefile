# crashed: `make demo` runs the whole loop locally; `make test` sets everything up and tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.crashed-installed
LOCK := deploy/requirements.lock
DOCKER ?= docker
IMAGE ?= crashed:local
CI_IMAGE ?= crashed-ci:local
BIGQUERY_IMAGE ?= crashed-bigquery:local
# BuildKit where the client has it; the host's network (no bridge: deploy/docker-daemon.sh).
DOCKER_BUILD := bash deploy/build.sh

help:  ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): setup.py $(wildcard $(LOCK))
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "Python 3.11+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip wheel
	$(BIN)/python -m pip install -q $(if $(wildcard $(LOCK)),-c $(LOCK)) -e ".[test,dev]"
	touch $(STAMP)

install: $(STAMP)  ## Create .venv and install the package with test/dev extras

servers: install  ## Install the local test servers (BigQuery emulator venv, gitlab-ci-local)
	bash tests/servers/bigquery/setup.sh
	bash tests/servers/install_gitlab_ci_local.sh

lint: install  ## ruff
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

test: install servers lint  ## Set everything up and run every test (not the container ones)
	$(BIN)/python -m pytest -m "not containers" -n 2 --dist worksteal

image:  ## Build the runtime image crashed:local (python:3.11-slim, else a local Debian base)
	$(DOCKER_BUILD) --build-arg PYTHON_IMAGE=$$(bash deploy/base-image.sh 3.11) \
		-f deploy/crashed.Dockerfile --target runtime -t $(IMAGE) .
	@$(DOCKER) image inspect --format '$(IMAGE): {{.Size}} bytes' $(IMAGE)

image-ci:  ## Build the CI image crashed-ci:local (runtime + make test's tools)
	$(DOCKER_BUILD) --build-arg PYTHON_IMAGE=$$(bash deploy/base-image.sh 3.11) \
		-f deploy/crashed.Dockerfile --target ci -t $(CI_IMAGE) .

image-bigquery:  ## Build the BigQuery emulator image (Python 3.13) the CI test job uses
	$(DOCKER_BUILD) --build-arg PYTHON_IMAGE=$$(bash deploy/base-image.sh 3.13) \
		-f deploy/bigquery-emulator.Dockerfile -t $(BIGQUERY_IMAGE) .

test-containers: install image image-ci image-bigquery  ## Build the images; container tests + GitLab's test job
	$(BIN)/python -m pytest -m containers
	$(BIN)/python deploy/gitlab_test_job.py --image $(CI_IMAGE) \
		--service-image $(BIGQUERY_IMAGE)

demo: install  ## The whole loop on the embedded default: data → pipeline → review → serve
	$(BIN)/crashed demo

bench: install  ## Benchmarks (numbers go to bench/results and the README)
	$(BIN)/python bench/bench_quality.py
	$(BIN)/python bench/bench_pipeline.py
	$(BIN)/python bench/bench_load.py
	$(BIN)/python bench/bench_bootstrap.py
	$(BIN)/python bench/bench_predict.py
	$(BIN)/python bench/bench_forest.py
	$(BIN)/python bench/bench_http.py
	$(BIN)/python bench/bench_switch.py
	$(BIN)/python bench/bench_instructions.py  # needs valgrind (Debian package)

clean:  ## Remove local state (keeps .venv)
	rm -rf .crashed .pytest_cache

.PHONY: help install servers lint test demo bench clean image image-ci image-bigquery \
	test-containers
