"""Replay on several cores: one process per share of the input.

A file replay splits the customers into partitions: each process reads the
whole input, keeps the customers of its partition (as a Kafka partition keyed by
customer would), and the SPEC's rules are per customer (departures are broadcast
to every partition), so the result equals a single-process replay.  A topic
replay gives each process some of the topic's partitions.  Every process writes
its facts to its own DuckDB part file and sends its ledger decisions to the
parent, which stores each flush once every share that reads its source has
delivered it, so the ledger store sees positions in order; the parent then
merges the part files.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ledger.errors import SpocError
from ledger.records import Erasure
from processors.batch.history import StateFile
from processors.batch.replay_pass import (
    DUCKDB_MEMORY,
    Flush,
    LedgerSink,
)
from processors.batch.shares import Share, ShareResult
from processors.batch.summary import ReplaySummary
from processors.runtime.heap import chunked_collection, settle
from projections.duckdb_store import AnalyticsStore

MESSAGES_IN_FLIGHT = 4


class PartitionFailed(SpocError):
    """A replay worker process failed; its message says why."""


def part_path(analytics_path: Path, partition: int) -> Path:
    return analytics_path.with_name(f"{analytics_path.name}.part{partition}")


def _worker(index: int, share: Share, part: str, out: Any) -> None:
    """Process entry point: replay one share into ``part``, report over ``out``."""
    try:
        analytics = AnalyticsStore(part, DUCKDB_MEMORY)
        analytics.con.begin()
        analytics.create_schema(replace=True)

        def send(flush: Flush) -> int:
            out.put(("flush", index, flush))
            return 0

        result = share.run(analytics, send)
        analytics.con.commit()
        analytics.close()
        out.put(("done", index, result))
    except BaseException as error:  # reported to the parent, which raises it
        out.put(("error", index, f"{type(error).__name__}: {error}"))


def run_shares(shares: Sequence[Share], analytics: AnalyticsStore, store: LedgerSink) -> ShareResult:
    """Run the shares in processes, hand their flushes to ``store`` in order, and merge their facts into ``analytics``."""
    context = multiprocessing.get_context("spawn")
    messages = context.Queue(maxsize=MESSAGES_IN_FLIGHT * len(shares))
    parts = [part_path(analytics.path, k) for k in range(len(shares))]
    workers = [
        context.Process(target=_worker, args=(k, share, str(parts[k]), messages), daemon=True)
        for k, share in enumerate(shares)
    ]
    for worker in workers:
        worker.start()
    try:
        # Unpickling the flushes makes many small objects; with automatic collection they set off
        # collections over everything alive, and receiving cost ~25 us a ledger decision (~4 us without).
        with chunked_collection():
            result, states, erasures = _receive(messages, workers, shares, store)
        for worker in workers:
            worker.join()
        for k, part in enumerate(parts):
            analytics.absorb(part, f"partition_{k}")
        # The rejected lines are in the reporting share's part, the erasures in the customer's, and the
        # rows of earlier replays of the history in the analytics file itself.
        for erasure in erasures:
            analytics.erase(erasure.customer_id, erasure.position.source, erasure.position.seq)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        for part in parts:
            for leftover in (part, part.with_name(part.name + ".wal")):
                leftover.unlink(missing_ok=True)
    return ShareResult(result.summary, result.latest, tuple(states))


def _receive(
    messages: Any, workers: list[Any], shares: Sequence[Share], store: LedgerSink
) -> tuple[ShareResult, list[StateFile], list[Erasure]]:
    """Take the workers' messages until all are done, storing each flush once every share that reads it delivered it."""
    pending: dict[int, list[Flush]] = defaultdict(list)
    summary = ReplaySummary()
    erasures: list[Erasure] = []
    states: list[StateFile] = []
    latest: datetime | None = None
    finished = 0
    while finished < len(shares):
        try:
            message = messages.get(timeout=1.0)
        except queue_module.Empty:
            if any(w.exitcode not in (None, 0) for w in workers):
                raise PartitionFailed("a replay worker process died; see its output above") from None
            continue
        kind, index = message[0], message[1]
        if kind == "error":
            raise PartitionFailed(f"replay process {index} failed: {message[2]}")
        if kind == "flush":
            flush: Flush = message[2]
            delivered = pending[flush.number]
            delivered.append(flush)
            if len(delivered) == shares[index].sharers:
                del pending[flush.number]
                merged = _merged(delivered)
                erasures.extend(merged.erasures)
                summary.ledger_events_written += store(merged)
                settle()
        else:
            part: ShareResult = message[2]
            summary.add(part.summary)
            if part.latest is not None and (latest is None or part.latest > latest):
                latest = part.latest
            states.extend(part.states)
            finished += 1
    return ShareResult(summary, latest), states, erasures


def _merged(flushes: list[Flush]) -> Flush:
    """One flush of every share that read the same lines: their decisions in input order."""
    first = flushes[0]
    records = sorted((r for f in flushes for r in f.records), key=lambda r: r.position.seq)
    erasures = [e for f in flushes for e in f.erasures]
    return Flush(first.number, first.source, first.tracking, first.offset, first.lines, records, erasures)
