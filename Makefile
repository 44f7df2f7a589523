# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: setup test test-unit test-apache demo bench bench-live clean

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

demo: setup
	$(BIN)/spoc demo

bench: setup
	$(BIN)/python benchmarks/replay.py

bench-live: setup
	$(BIN)/python benchmarks/live.py

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
