# Bootstrap and everyday commands. `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HASH   := $(shell cksum < pyproject.toml | cut -d' ' -f1)
RUN    := $(VENV)/.runtime-$(HASH)
DEMO   := $(VENV)/.demo-$(HASH)
STAMP  := $(VENV)/.dev-$(HASH)

.PHONY: demo test test-fast check fmt lint type bench bench-nodered vectors new-decoder services clean

$(RUN): pyproject.toml  # lorameter itself: all the demo needs
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "lorameter needs Python 3.11 or newer (python3 is " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@rm -f $(VENV)/.runtime-*
	@touch $@

$(DEMO): $(RUN)  # plus the demo extra (amqtt, the embedded broker when mosquitto is missing)
	$(BIN)/pip install --quiet -e '.[demo]'
	@rm -f $(VENV)/.demo-*
	@touch $@

$(STAMP): $(RUN)  # plus the test and lint tools (and the demo extra, which tests exercise)
	$(BIN)/pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.dev-*
	@touch $@

demo: $(DEMO)  ## the demo: embedded broker, simulated fleet, API on http://127.0.0.1:8000
	$(BIN)/lorameter demo

services:
	@./scripts/ensure-services.sh

test: $(STAMP) services  ## the whole test suite, with the real mosquitto and influxd
	$(BIN)/pytest

test-fast: $(STAMP)  ## only the tests that need no services
	$(BIN)/pytest -m "not integration" -k "not influxdb"

lint: $(STAMP)  ## ruff, and DESIGN.md's import direction (import-linter, [tool.importlinter])
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

type: $(STAMP)
	$(BIN)/mypy

check: lint type test

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench-nodered: $(STAMP) services  ## lorameter against a Node-RED flow (npm installs Node-RED once)
	$(BIN)/python bench/nodered.py

bench: $(STAMP) services
	$(BIN)/python bench/decoders.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/metering.py
	$(BIN)/python bench/queries.py
	$(BIN)/python bench/alarms.py
	$(BIN)/python bench/influx_write.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/robustness.py
	$(BIN)/python bench/e2e.py --backend both
	$(BIN)/python bench/latency.py --backend both

vectors: $(STAMP)  ## every decoder against the TTN Device Repository's vendor examples
	$(BIN)/python scripts/vendor_vectors.py $(VECTORS)

new-decoder:  ## make new-decoder ID=vendor_model
	@test -n "$(ID)" || (echo "usage: make new-decoder ID=vendor_model" && exit 2)
	@test ! -e decoders/devices/$(ID).py || (echo "decoders/devices/$(ID).py exists" && exit 2)
	cp decoders/devices/_template.py decoders/devices/$(ID).py
	@echo "now edit decoders/devices/$(ID).py, then: $(BIN)/pytest tests/decoders -k $(ID)"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
