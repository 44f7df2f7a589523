# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
# The base interpreter, never a venv's: with .venv activated, `python3.11` is the venv that setup deletes.
PYTHON ?= $(shell $$(command -v python3.11 || command -v python3) -c 'import sys; print(sys._base_executable)')
VENV := .venv
BIN := $(VENV)/bin
# Installs are pinned: requirements/dev.txt holds every package with its hashes (README, "Pinned installs");
# requirements/demo.txt only the runtime and the embedded broker, which is all `make demo` needs.
LOCK := requirements/dev.txt
DEMO_LOCK := requirements/demo.txt
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)
DEMO_STAMP := $(VENV)/.installed-demo-$(shell cat pyproject.toml $(DEMO_LOCK) | cksum | cut -d' ' -f1)
# The lock's own tool, pinned with its hash in requirements/lock-tool.txt; only `make lock` uses it.
TOOLS := out/lock-tool
# Python 3.13 for `make test-py313` (pyenv's, or one on the PATH).
PY313 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) $(shell command -v python3.13))

.PHONY: setup lint test test-unit test-apache test-py313 test-wheel test-latest lock fuzz demo bench bench-memory bench-bounded bench-restart bench-live bench-backpressure bench-compare bench-follow-ups bench-route bench-sealing clean

setup: $(STAMP)

# Exactly the locked versions (--require-hashes), then the project itself, built with the
# locked setuptools (no build isolation, so nothing is resolved from the index on the day).
define install_locked
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r $(1)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@
endef

$(STAMP): pyproject.toml $(LOCK)
	$(call install_locked,$(LOCK))

$(DEMO_STAMP): pyproject.toml $(DEMO_LOCK)
	$(call install_locked,$(DEMO_LOCK))

# Re-resolves every pin to the newest version pyproject.toml allows, on purpose. Run
# `make test-latest` first to see whether the newest versions pass; then review the diff.
lock: $(TOOLS)/.installed
	$(TOOLS)/bin/uv pip compile --quiet --upgrade --universal --python-version 3.11 --generate-hashes \
		pyproject.toml requirements/build.in --extra test --extra postgres --extra lint --extra demo -o $(LOCK)
	$(TOOLS)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
		pyproject.toml requirements/build.in --extra demo -c $(LOCK) -o $(DEMO_LOCK)
	$(TOOLS)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
		pyproject.toml requirements/build.in -c $(LOCK) -o requirements/runtime.txt
	$(TOOLS)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
		pyproject.toml requirements/build.in --extra postgres -c $(LOCK) -o requirements/image.txt

$(TOOLS)/.installed: requirements/lock-tool.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements/lock-tool.txt
	touch $@

# Drift check: the newest versions pyproject.toml allows, in a throwaway venv, against the unit suite.
LATEST := out/latest-venv
test-latest:
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(LATEST)/bin/pip install --quiet --disable-pip-version-check --upgrade -e '.[test,postgres,lint]'
	$(LATEST)/bin/pip list --format=freeze > out/latest-versions.txt
	@echo "newest allowed versions: out/latest-versions.txt (diff against $(LOCK) to see the drift)"
	$(LATEST)/bin/python -m pytest tests/unit

test: setup
	$(BIN)/python -m pytest

# Lint, types and the import layering (pyproject.toml configures all three); CI runs it before the tests.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	if [ -x $(BIN)/hadolint ]; then $(BIN)/hadolint --failure-threshold info Dockerfile; else echo "hadolint not installed (x86-64 Linux only): Dockerfile not linted"; fi

test-unit: setup
	$(BIN)/python -m pytest tests/unit

# The unit suite on Python 3.13 (out/venv-3.13, the same lock), then the wheel smoke test on it.
test-py313: setup
	@test -x "$(PY313)" || { echo "no Python 3.13 found: install it (pyenv install 3.13) or pass PY313=/path/to/python3.13" >&2; exit 1; }
	rm -rf out/venv-3.13
	$(PY313) -m venv out/venv-3.13
	out/venv-3.13/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r $(LOCK)
	out/venv-3.13/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	out/venv-3.13/bin/python -m pytest -p no:cacheprovider tests/unit
	scripts/wheel-smoke $(PY313)

# A wheel of this checkout in a fresh venv outside it (runtime dependencies only): simulate, replay, report.
test-wheel: setup
	scripts/wheel-smoke $(PYTHON)

# The integration tests again, against Apache Kafka from Maven Central jars (Java 17+ and Maven).
test-apache: setup
	SPOC_TEST_BROKER=apache $(BIN)/python -m pytest tests/integration

# The coverage-guided fuzzer on the validator and intake step, for FUZZ_SECONDS (default 600).
FUZZ_SECONDS ?= 600
fuzz: setup
	mkdir -p out/fuzz-corpus
	cd out && ../$(BIN)/python ../tests/fuzz/fuzz_intake.py -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
		-timeout=10 -dict=../tests/fuzz/events.dict fuzz-corpus ../tests/fuzz/seeds

# The runtime and the embedded broker only; a .venv that `make test` set up has them too.
demo: $(if $(wildcard $(STAMP)),$(STAMP),$(DEMO_STAMP))
	$(BIN)/spoc demo

bench: setup
	$(BIN)/python benchmarks/replay.py

# Memory against events at a fixed per-customer state: docs/performance.md.
bench-follow-ups: setup
	$(BIN)/python benchmarks/follow_ups.py

bench-memory: setup
	$(BIN)/python benchmarks/memory_growth.py

# Peak RSS and disk of a replay at 0.6M, 2.4M and 10M events with a fixed state cache: docs/performance.md.
bench-bounded: setup
	$(BIN)/python -m benchmarks.bounded_memory

# Time until a worker serves a new touchpoint, first run against restart, on 400k and 2M events of history.
bench-restart: setup
	$(BIN)/python benchmarks/restart.py

bench-live: setup
	$(BIN)/python benchmarks/live.py

# GET /route latency while the worker processes 1,000 events/s: docs/routing.md.
bench-route: setup
	$(BIN)/python benchmarks/route.py

bench-backpressure: setup
	$(BIN)/python benchmarks/backpressure.py --json out/backpressure.json

# What sealing each customer's facts costs the worker and the sink: docs/performance.md.
bench-sealing: setup
	$(BIN)/python benchmarks/sealing.py

# Ours beside the ceiling and a Quix Streams peer: docs/benchmarks.md.
bench-compare: setup
	$(BIN)/python benchmarks/compare.py --json out/compare.json

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
