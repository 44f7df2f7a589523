"""Replay on several cores: one process per partition of the customers.

Each worker reads the whole input, keeps the customers of its partition (as a
Kafka partition keyed by customer would) and writes their facts to its own DuckDB
part file.  Ledger decisions travel to the parent, which stores each flush once
every worker has delivered it, so the ledger store sees positions in order; the
parent then merges the part files.  The SPEC's rules are per customer (departures
are broadcast to every partition), so the result equals a single-process replay.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ledger.core import Erasure, LedgerRecord
from ledger.errors import SpocError
from ledger.policy import Policy
from ledger.store import LedgerStore
from processors.replay_pass import ReplayPass, ReplaySummary, store_in
from projections.duckdb_store import AnalyticsStore

MESSAGES_IN_FLIGHT = 4


class PartitionFailed(SpocError):
    """A replay worker process failed; its message says why."""


@dataclass
class _Flush:
    seq: int
    source: str
    offset: int
    records: list[LedgerRecord]
    erasures: list[Erasure]


def part_path(analytics_path: Path, partition: int) -> Path:
    return analytics_path.with_name(f"{analytics_path.name}.part{partition}")


def _worker(partition: int, partitions: int, inputs: list[str], part: str, policy: Policy, out: Any) -> None:
    """Process entry point: replay one partition into ``part``, report over ``out``."""
    try:
        analytics = AnalyticsStore(part)
        analytics.con.begin()
        analytics.create_schema(replace=True)
        flushes = 0

        def send(records: list[LedgerRecord], erasures: list[Erasure], source: str, offset: int) -> int:
            nonlocal flushes
            out.put(("flush", partition, flushes, _Flush(run.seq, source, offset, records, erasures)))
            flushes += 1
            return 0

        run = ReplayPass(analytics, send, policy, (partition, partitions))
        for path in inputs:
            run.run_file(path, None)
        analytics.con.commit()
        analytics.close()
        out.put(("done", partition, run.summary, run.latest))
    except BaseException as error:  # reported to the parent, which raises it
        out.put(("error", partition, f"{type(error).__name__}: {error}"))


def replay_partitioned(
    inputs: list[str],
    analytics: AnalyticsStore,
    ledger: LedgerStore,
    policy: Policy,
    partitions: int,
    progress: Callable[[int], None] | None,
) -> tuple[ReplaySummary, datetime | None]:
    """Run the partitions, store their decisions in order, and merge their facts into ``analytics``."""
    context = multiprocessing.get_context("spawn")
    messages = context.Queue(maxsize=MESSAGES_IN_FLIGHT * partitions)
    parts = [part_path(analytics.path, k) for k in range(partitions)]
    workers = [
        context.Process(target=_worker, args=(k, partitions, inputs, str(parts[k]), policy, messages), daemon=True)
        for k in range(partitions)
    ]
    for worker in workers:
        worker.start()
    store = store_in(ledger)
    pending: dict[int, list[_Flush]] = defaultdict(list)
    summary = ReplaySummary()
    latest: datetime | None = None
    finished = 0
    try:
        while finished < partitions:
            try:
                message = messages.get(timeout=1.0)
            except queue_module.Empty:
                if any(w.exitcode not in (None, 0) for w in workers):
                    raise PartitionFailed("a replay worker process died; see its output above") from None
                continue
            kind, partition = message[0], message[1]
            if kind == "error":
                raise PartitionFailed(f"replay partition {partition} failed: {message[2]}")
            if kind == "flush":
                index, flush = message[2], message[3]
                pending[index].append(flush)
                if len(pending[index]) == partitions:
                    summary.ledger_events_written += _store_flush(store, pending.pop(index))
                    if progress is not None:
                        progress(flush.seq)
            else:
                part_summary, part_latest = message[2], message[3]
                _add(summary, part_summary)
                if part_latest is not None and (latest is None or part_latest > latest):
                    latest = part_latest
                finished += 1
        for worker in workers:
            worker.join()
        for k, part in enumerate(parts):
            analytics.absorb(part, f"partition_{k}")
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        for part in parts:
            for leftover in (part, part.with_name(part.name + ".wal")):
                leftover.unlink(missing_ok=True)
    return summary, latest


def _store_flush(store: Callable[..., int], flushes: list[_Flush]) -> int:
    first = flushes[0]
    records = sorted((r for f in flushes for r in f.records), key=lambda r: r.position.seq)
    erasures = [e for f in flushes for e in f.erasures]
    return store(records, erasures, first.source, first.offset)


def _add(total: ReplaySummary, part: ReplaySummary) -> None:
    total.accepted += part.accepted
    total.duplicates += part.duplicates
    total.rejected.update(part.rejected)
    total.customers += part.customers
    total.owner_changes += part.owner_changes
    total.handoffs += part.handoffs
    total.silo_handoffs += part.silo_handoffs
    total.customers_erased += part.customers_erased
