# pinpoint-export-operator: every target installs what it needs, idempotently.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: test unit e2e lint tools image push sandbox sandbox-down demo bench lock clean
# The operator's image: by default the chart's (its repository, the operator's version).
IMAGE ?= $(shell tools/image.sh name)

test: lint unit e2e  ## Lint, type-check, unit tests, then e2e tests on the sandbox.

$(VENV)/.synced: pyproject.toml sandbox/pyproject.toml requirements-dev.in requirements.lock tools/python-env.sh
	tools/python-env.sh
	touch $@

tools:  ## Build (or reuse) the sandbox's Go binaries.
	tools/build.sh

lint: $(VENV)/.synced  ## ruff, mypy, the import layers (.importlinter), the GitHub workflows.
	ruff check operator sandbox tests bench
	ruff format --check operator sandbox tests bench
	mypy
	lint-imports
	actionlint=$$(tools/build.sh --which actionlint) && "$$actionlint" -no-color

unit: $(VENV)/.synced  ## Unit tests: no servers (promtool and Helm, built first, test the alert rules).
	tools/build.sh promtool helm3
	pytest tests/unit sandbox/tests/unit -q

e2e: $(VENV)/.synced tools image  ## The sandbox runs the operator and copy pods from the image.
	pytest tests/e2e sandbox/tests/e2e -q -m e2e --durations=20

image:  ## Build the operator's image with podman (installed if missing): make image IMAGE=...
	tools/image.sh $(IMAGE)

push:  ## Push the image to its registry (log in first: tools/containers.sh exec podman login).
	tools/containers.sh exec podman push $(IMAGE)

sandbox: $(VENV)/.synced tools  ## Start the sandbox in the background; writes .sandbox/env.
	$(PY) -m pinpoint_export_sandbox up

sandbox-down: $(VENV)/.synced
	$(PY) -m pinpoint_export_sandbox down

demo: $(VENV)/.synced tools  ## The operator end to end on the sandbox (starts it if needed).
	$(PY) -m pinpoint_export_sandbox demo

bench: $(VENV)/.synced tools image  ## Benchmarks; results in bench/results/.
	$(PY) bench/copier_bench.py
	$(PY) bench/emulator_bench.py
	$(PY) bench/operator_bench.py --exports 500  # the design scale: memory, writes, polls
	$(PY) bench/operator_bench.py --exports 20   # an unloaded machine: the latency targets
	$(PY) bench/image_bench.py                   # size, cold and warm make image, start times
	$(PY) bench/pods_bench.py                    # the node's operator and copy pods: containers, processes

lock:  ## Re-resolve requirements.lock from pyproject.toml.
	tools/python-env.sh --lock

clean:
	rm -rf $(VENV) .sandbox .mypy_cache .ruff_cache .pytest_cache

.PHONY: chart-crds
chart-crds:  ## Copy crds/ into the Helm chart's crds/ (tests/unit/test_chart.py checks they match).
	tools/sync-chart-crds.sh
