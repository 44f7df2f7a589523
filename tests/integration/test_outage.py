"""A broker outage: Apache Kafka stops while the publisher, the worker and the DuckDB sink run, and
comes back (same data, same ports) a few seconds later; everything resumes by itself, nothing lost.

The publisher is one ``spoc publish -`` fed through a pipe, as an upstream system would run it:
nobody retries anything for it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import IO

import pytest

from processors.kafka.topics import ALL_TOPICS, ensure_topics
from processors.runtime.child_process import die_with_parent
from spoc.worker_process import sink_process
from tests.conftest import ROOT
from tests.integration.test_live import _assert_live_equals_replay, _workload
from tests.live import (
    ledger_progress,
    running,
    sink_progress,
    slices,
    spoc_publish_from_a_pipe,
    wait_for_workers,
    wait_until,
    worker,
)

OUTAGE_SECONDS = 8
SLICES = 40
PAUSE_SECONDS = 0.4
PROGRESS_BEFORE_OUTAGE = 2_000
"""Input messages the worker's ledger store holds before the broker is stopped (of 20,000 over 16 s)."""


def _feed(pipe: IO[bytes], source: Path) -> None:
    """Write the input in slices with a pause between them (a stream, not a backlog), then close the pipe."""
    with pipe:
        for content in slices(source, SLICES):
            pipe.write(content)
            pipe.flush()
            time.sleep(PAUSE_SECONDS)


def test_everything_resumes_after_the_broker_was_away(
    tmp_path: Path, pipeline_bootstrap: str, apache_kafka: dict[str, str] | None
) -> None:
    kafka_dir = os.environ.get("SPOC_TEST_KAFKA_DIR") or (apache_kafka or {}).get("SPOC_TEST_KAFKA_DIR")
    if not kafka_dir:
        pytest.skip("needs the Apache Kafka that `make test-apache` starts (scripts/kafka-broker outage)")
    source = _workload(tmp_path, 20_000, seed=81)
    group = f"spoc-test-{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_topics(pipeline_bootstrap, ALL_TOPICS, 3))
    publisher_log = (tmp_path / "publisher.log").open("wb")
    publisher = spoc_publish_from_a_pipe(pipeline_bootstrap, output=publisher_log)
    assert publisher.stdin is not None
    feeder = threading.Thread(target=_feed, args=(publisher.stdin, source))
    feeder.start()
    try:
        with running([worker(pipeline_bootstrap, f"sqlite:///{tmp_path}/ledger.sqlite", tmp_path / "worker.log", group)]) as [live]:
            sink = sink_process(pipeline_bootstrap, f"sqlite:///{tmp_path}/ledger.sqlite", tmp_path / "live.duckdb", tmp_path / "sink.log")
            try:
                # The outage lands mid-work: the worker and the sink have made progress, the stream still flows.
                wait_until(lambda: ledger_progress(tmp_path / "ledger.sqlite") >= PROGRESS_BEFORE_OUTAGE, "the worker's progress")
                wait_until(lambda: sink_progress(tmp_path / "live.duckdb") > 0, "the sink's progress")
                assert feeder.is_alive(), "the stream ended before the outage"
                subprocess.run(
                    [str(ROOT / "scripts" / "kafka-broker"), "outage", str(OUTAGE_SECONDS)],
                    env={**os.environ, "SPOC_TEST_KAFKA_DIR": kafka_dir}, check=True, preexec_fn=die_with_parent,
                )
                feeder.join()
                assert publisher.wait(60) == 0, (tmp_path / "publisher.log").read_text()
                wait_for_workers(pipeline_bootstrap, [live])
                assert live.running and sink.poll() is None, "a process gave up during the outage"
            finally:
                sink.terminate()
                sink.wait(30)
            assert live.terminate() == 0
    finally:
        feeder.join()
        publisher.kill()
        publisher.wait()
        publisher_log.close()
    _assert_live_equals_replay(tmp_path, pipeline_bootstrap, source)
    # The outage is a line when the broker is lost and one when it is back, in both logs, instead of
    # aiokafka's error for every attempt (once ten thousand lines a second: a busy loop, now backed off).
    for log in ("worker.log", "sink.log", "publisher.log"):
        text = (tmp_path / log).read_text()
        assert '"logger": "aiokafka"' not in text and len(text.splitlines()) < 1000, log
        lost, back = text.count("Kafka broker unreachable"), text.count("Kafka broker reachable again")
        assert lost >= 1 and back == lost, (log, lost, back)
