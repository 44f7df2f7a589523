# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: setup test test-unit test-apache fuzz demo bench bench-memory bench-live bench-backpressure bench-compare clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

test: setup
	$(BIN)/python -m pytest

test-unit: setup
	$(BIN)/python -m pytest tests/unit

# The integration tests again, against Apache Kafka from Maven Central jars (Java 17+ and Maven).
test-apache: setup
	SPOC_TEST_BROKER=apache $(BIN)/python -m pytest tests/integration

# The coverage-guided fuzzer on the validator and intake step, for FUZZ_SECONDS (default 600).
FUZZ_SECONDS ?= 600
fuzz: setup
	mkdir -p out/fuzz-corpus
	cd out && ../$(BIN)/python ../tests/fuzz/fuzz_intake.py -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
		-timeout=10 -dict=../tests/fuzz/events.dict fuzz-corpus ../tests/fuzz/seeds

demo: setup
	$(BIN)/spoc demo

bench: setup
	$(BIN)/python benchmarks/replay.py

# Memory against events at a fixed per-customer state: docs/performance.md.
bench-memory: setup
	$(BIN)/python benchmarks/memory_growth.py

bench-live: setup
	$(BIN)/python benchmarks/live.py

bench-backpressure: setup
	$(BIN)/python benchmarks/backpressure.py --json out/backpressure.json

# Ours beside the ceiling and a Quix Streams peer: docs/benchmarks.md.
bench-compare: setup
	$(BIN)/python benchmarks/compare.py --json out/compare.json

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
