"""Back-pressure: how much waits on the topic does not swell the worker or the sink.

The worker: the same first events are processed on two fresh embedded brokers, once with nothing
else on the topic and once with twenty times as much still waiting behind them; its memory at the
same point of progress must be about the same.  The sink: one sink follows the worker as it works
off the backlog, another starts afterwards on all of its facts at once; both end with the same
data, and their peak memory must be about the same.  Had either buffered the backlog, it would be
larger by more than the backlog's raw size.  The 1M-event burst: benchmarks/backpressure.py.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from benchmarks.workload import generate
from processors.kafka.embedded_broker import EmbeddedBroker
from processors.kafka.topics import FACTS
from processors.project import published_offsets
from spoc.worker_process import (
    WorkerProcess,
    caught_up,
    free_port,
    memory_mib,
    partition_ends,
    sink_process,
)
from tests.live import publish_file, running, wait_for_workers, wait_until, worker

FIRST = 25_000
BACKLOG = 20 * FIRST
WORKER_MARGIN_MIB = 96.0
"""What the worker may hold besides its state, measured while it works: 16 queued batches and one rebuild
chunk of 5,000 messages per partition, 1 MiB fetches (20 to 60 MiB measured)."""
SINK_MARGIN_MIB = 48.0
"""The sink holds one 1 MiB fetch and its transaction, and DuckDB's memory is capped (SinkSettings.memory_limit).
Uncapped, a checkpoint compressing a full row group could add 100 MiB to either sink's peak (CI once
measured 236 MiB following, 316 late); capped, late sinks peaked at 193-201 MiB."""


def _processed(live: WorkerProcess) -> float:
    try:
        return live.metric("spoc_events_processed_total")  # counted per chunk, also while working off a backlog
    except OSError:  # not serving yet
        return 0.0


@contextmanager
def _sink(bootstrap: str, ledger_url: str, snapshot: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = sink_process(bootstrap, ledger_url, snapshot, log)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(30)


def _absorb(tmp: Path, events: list[bytes], first: int) -> float:
    """The worker's memory once it has done ``first`` events of ``events`` (all on the topic before it starts).

    With a backlog, one sink follows the worker meanwhile and another starts on all the facts
    afterwards: their peaks are compared."""
    source = tmp / "events.jsonl"
    source.write_bytes(b"\n".join(events) + b"\n")
    with EmbeddedBroker(free_port()) as broker:
        bootstrap = broker.bootstrap
        publish_file(bootstrap, source)
        group = f"spoc-test-{uuid.uuid4().hex[:8]}"
        ledger_url = f"sqlite:///{tmp}/ledger.sqlite"
        with running([worker(bootstrap, ledger_url, tmp / "worker.log", group)]) as [live]:
            if len(events) == first:
                wait_for_workers(bootstrap, [live])
                return memory_mib(live.process.pid)
            with _sink(bootstrap, ledger_url, tmp / "following.duckdb", tmp / "sink.log") as following:
                wait_until(lambda: _processed(live) >= first, "the worker has done the first events")
                worker_mib = memory_mib(live.process.pid)
                wait_for_workers(bootstrap, [live])
                ends = partition_ends(bootstrap, FACTS)
                wait_until(lambda: caught_up(published_offsets(tmp / "following.duckdb"), ends), "the following sink is done")
                following_peak = memory_mib(following.pid, "VmHWM")
            with _sink(bootstrap, ledger_url, tmp / "late.duckdb", tmp / "sink.log") as late:
                wait_until(lambda: caught_up(published_offsets(tmp / "late.duckdb"), ends), "the late sink is done")
                late_peak = memory_mib(late.pid, "VmHWM")
    assert late_peak < following_peak + SINK_MARGIN_MIB, (following_peak, late_peak)
    return worker_mib


@pytest.mark.skipif(os.environ.get("SPOC_TEST_BROKER") == "apache", reason="uses its own embedded brokers: runs in `make test`")
def test_a_backlog_twenty_times_the_work_done_does_not_swell_the_worker_or_the_sink(tmp_path: Path) -> None:
    events = list(generate(FIRST + BACKLOG, customers=2_000, seed=13))
    backlog_mib = sum(len(line) for line in events[FIRST:]) / 2**20
    assert backlog_mib > WORKER_MARGIN_MIB  # as Python objects, several times that
    quiet, busy = tmp_path / "quiet", tmp_path / "busy"
    quiet.mkdir()
    busy.mkdir()
    worker_quiet = _absorb(quiet, events[:FIRST], FIRST)
    worker_busy = _absorb(busy, events, FIRST)
    assert worker_busy < worker_quiet + WORKER_MARGIN_MIB, (worker_quiet, worker_busy, backlog_mib)
