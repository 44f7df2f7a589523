"""TLS and SASL (PLAIN, SCRAM) through every command, on Apache Kafka's SASL_SSL listener.

`make test-apache` starts the broker with that listener (scripts/kafka-broker); on the
embedded broker these tests skip.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from processors.kafka.security import kafka_security
from tests.integration.test_live import _assert_live_equals_replay, _workload
from tests.live import publish_file, running, wait_for_workers, worker


@pytest.fixture
def secured(secure_kafka: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This process and its children connect over SASL_SSL; yields the secure bootstrap."""
    monkeypatch.setenv("SPOC_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SPOC_KAFKA_SSL_CAFILE", secure_kafka["SPOC_TEST_KAFKA_CA"])
    monkeypatch.setenv("SPOC_KAFKA_SASL_USERNAME", secure_kafka["SPOC_TEST_KAFKA_USER"])
    monkeypatch.setenv("SPOC_KAFKA_SASL_PASSWORD", secure_kafka["SPOC_TEST_KAFKA_PASSWORD"])
    kafka_security.cache_clear()
    yield secure_kafka["SPOC_TEST_SECURE_BOOTSTRAP"]
    monkeypatch.undo()
    kafka_security.cache_clear()


def spoc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "spoc", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_the_whole_pipeline_runs_over_sasl_ssl(
    mechanism: str, tmp_path: Path, pipeline_bootstrap: str, secured: str, monkeypatch: pytest.MonkeyPatch,
    secure_kafka: dict[str, str],
) -> None:
    monkeypatch.setenv("SPOC_KAFKA_SASL_MECHANISM", mechanism)
    kafka_security.cache_clear()
    source = _workload(tmp_path, 3_000, seed=51)
    publish_file(secured, source)  # spoc publish's code
    group = f"spoc-test-{uuid.uuid4().hex[:8]}"
    with running([worker(secured, f"sqlite:///{tmp_path}/ledger.sqlite", tmp_path / "worker.log", group)]) as [only]:
        wait_for_workers(secured, [only])
        assert only.terminate() == 0
    _assert_live_equals_replay(tmp_path, secured, source)  # the sink's and the readers' code
    password = secure_kafka["SPOC_TEST_KAFKA_PASSWORD"]
    assert password not in (tmp_path / "worker.log").read_text(), "the SASL password reached the worker's log"


def test_a_wrong_password_is_a_clear_error_that_does_not_show_it(
    secured: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SPOC_KAFKA_SASL_PASSWORD", "not-the-password")
    source = tmp_path / "one.jsonl"
    source.write_text('{"event_id": "e1", "occurred_at": "2025-01-01T00:00:00Z", "customer_id": "c1", '
                      '"channel": "phone", "direction": "inbound", "kind": "inquiry"}\n')
    result = spoc("publish", "--bootstrap", secured, str(source))
    assert result.returncode == 2
    assert "SASL_SSL with PLAIN as 'spoc'" in result.stderr and "SPOC_KAFKA_" in result.stderr
    assert "not-the-password" not in result.stderr + result.stdout
