"""Batch replay: JSONL files or a topic through the ledger core into DuckDB and the ledger store.

Replay rebuilds the analytics file from the given inputs in one transaction (a
reader sees the old tables or the new ones, never half), and appends the ledger
decisions to the ledger store with their input positions, so running the same
input again writes nothing new there.  Large inputs are split by customer over
several processes (``processors/partitioned.py``); the result is the same.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from aiokafka.errors import KafkaConnectionError

from ledger.errors import TerminalError
from ledger.policy import DEFAULT_POLICY, Policy
from ledger.store import LedgerStore
from processors.partitioned import run_shares
from processors.replay_pass import Flush, LedgerSink, ReplaySummary, store_in
from processors.replay_shares import FileShare, Share, TopicShare
from processors.sources import STDIN, check_readable
from processors.topics import TopicLayoutError, partition_counts, unreachable
from projections.duckdb_store import AnalyticsStore, compact

# Below this much input, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 8 * 1024 * 1024
MAX_WORKERS = 8


def default_workers(inputs: list[str]) -> int:
    if STDIN in inputs or sum(os.path.getsize(p) for p in inputs) < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def replay(
    inputs: list[str],
    analytics_path: str | Path,
    ledger_url: str,
    *,
    as_of: datetime | None = None,
    policy: Policy = DEFAULT_POLICY,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> ReplaySummary:
    """Replay ``inputs`` in order into a rebuilt analytics file and the ledger store."""
    check_readable(inputs)
    workers = workers or default_workers(inputs)
    if STDIN in inputs:
        workers = 1  # stdin can be read once only
    shares = [FileShare(tuple(inputs), policy, k, workers) for k in range(workers)]
    return rebuild(shares, analytics_path, ledger_url, as_of=as_of, policy=policy, progress=progress)


def replay_topic(
    bootstrap: str,
    topic: str,
    analytics_path: str | Path,
    ledger_url: str,
    *,
    as_of: datetime | None = None,
    policy: Policy = DEFAULT_POLICY,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> ReplaySummary:
    """Replay a topic, every partition from its beginning to its end now, as the live worker would process it.

    Positions are the topic's (``topic:partition`` and offset), so the ledger store
    is the worker's own: replaying into the live ledger store writes nothing new.
    """
    try:
        partitions = asyncio.run(partition_counts(bootstrap, (topic,))).get(topic, 0)
    except KafkaConnectionError as error:
        raise unreachable(bootstrap, error) from None
    if not partitions:
        raise TopicLayoutError(f"topic {topic} does not exist at {bootstrap}; publish to it first (`spoc publish`)")
    workers = max(1, min(workers or os.cpu_count() or 1, partitions, MAX_WORKERS))
    shares = [TopicShare(bootstrap, topic, tuple(range(k, partitions, workers)), policy) for k in range(workers)]
    return rebuild(shares, analytics_path, ledger_url, as_of=as_of, policy=policy, progress=progress)


def rebuild(
    shares: Sequence[Share],
    analytics_path: str | Path,
    ledger_url: str,
    *,
    as_of: datetime | None,
    policy: Policy,
    progress: Callable[[int], None] | None,
) -> ReplaySummary:
    """Rebuild the analytics file from the shares of an input (in processes when more than one)."""
    started = time.perf_counter()
    analytics = AnalyticsStore(analytics_path)
    changes = analytics.policy_changes(policy)
    if changes:
        analytics.close()
        raise TerminalError(
            f"{analytics_path} was built with another policy ({', '.join(changes)}), and its ledger store holds "
            "that policy's decisions. Write this run to a new --db (a what-if run), "
            f"or delete {analytics_path} and its ledger store first"
        )
    ledger = LedgerStore(ledger_url)
    try:
        analytics.con.begin()
        analytics.create_schema(replace=True)
        if len(shares) > 1:
            summary, latest = run_shares(shares, analytics, ledger, progress)
        else:
            summary, latest = shares[0].run(analytics, _reporting(store_in(ledger), progress))
        analytics.write_settings(
            policy,
            as_of=as_of.isoformat() if as_of else None,
            latest_event_at=latest.isoformat() if latest else None,
        )
        analytics.con.commit()
    except BaseException:
        analytics.con.rollback()
        raise
    finally:
        analytics.close()
        ledger.close()
    if summary.customers_erased:
        compact(Path(analytics_path))
    summary.seconds = time.perf_counter() - started
    return summary


def _reporting(sink: LedgerSink, progress: Callable[[int], None] | None) -> LedgerSink:
    """``sink``, telling ``progress`` how many lines have been read at every flush."""
    read = 0

    def reporting_sink(flush: Flush) -> int:
        nonlocal read
        written = sink(flush)
        read += flush.lines
        if progress is not None:
            progress(read)
        return written

    return reporting_sink
