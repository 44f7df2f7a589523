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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aiokafka.errors import KafkaConnectionError

from ledger.policy import DEFAULT_POLICY, Policy
from ledger.store import LedgerStore
from processors.batch.replay_pass import (
    DUCKDB_MEMORY,
    Flush,
    LedgerSink,
    store_in,
)
from processors.batch.shares import FileShare, Share, TopicShare
from processors.batch.split import run_shares
from processors.batch.summary import ReplaySummary
from processors.kafka.topics import TopicLayoutError, partition_counts, unreachable
from processors.sources import STDIN, check_readable
from projections.duckdb_store import AnalyticsStore, compact

# Below this much input, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 8 * 1024 * 1024
MAX_WORKERS = 8


def default_workers(inputs: list[str]) -> int:
    if STDIN in inputs or sum(os.path.getsize(p) for p in inputs) < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


@dataclass(frozen=True)
class TopicInput:
    """A Kafka topic to replay: every partition from its beginning to its end when the replay starts."""

    bootstrap: str
    topic: str


def replay(
    inputs: list[str] | TopicInput,
    analytics_path: str | Path,
    ledger_url: str,
    *,
    as_of: datetime | None = None,
    policy: Policy = DEFAULT_POLICY,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> ReplaySummary:
    """Replay files in order, or a topic, into a rebuilt analytics file and the ledger store.

    A topic is replayed partition by partition as the live worker processes it;
    its positions (``topic:partition`` and offset) are the worker's, so replaying
    into the live ledger store writes nothing new.
    """
    if isinstance(inputs, TopicInput):
        shares: Sequence[Share] = _topic_shares(inputs, policy, workers)
    else:
        shares = _file_shares(inputs, policy, workers)
    started = time.perf_counter()
    analytics = AnalyticsStore(analytics_path, DUCKDB_MEMORY)
    analytics.refuse_another_policy(
        policy,
        "its ledger store holds that policy's decisions. Write this run to a new --db (a what-if run), "
        f"or delete {analytics_path} and its ledger store first",
    )
    ledger = LedgerStore(ledger_url)
    try:
        analytics.con.begin()
        ledger.refuse_another_policy(
            policy, "replay into a new ledger store (--ledger, or leave SPOC_LEDGER_URL unset to get one beside a new "
            "--db), or give the --policy it was built with",
        )
        analytics.create_schema(replace=True)
        store = _reporting(store_in(ledger), progress)
        if len(shares) > 1:
            summary, latest = run_shares(shares, analytics, store)
        else:
            summary, latest = shares[0].run(analytics, store)
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


def _file_shares(inputs: list[str], policy: Policy, workers: int | None) -> list[Share]:
    check_readable(inputs)
    workers = workers or default_workers(inputs)
    if STDIN in inputs:
        workers = 1  # stdin can be read once only
    return [FileShare(tuple(inputs), policy, k, workers) for k in range(workers)]


def _topic_shares(source: TopicInput, policy: Policy, workers: int | None) -> list[Share]:
    try:
        partitions = asyncio.run(partition_counts(source.bootstrap, (source.topic,))).get(source.topic, 0)
    except KafkaConnectionError as error:
        raise unreachable(source.bootstrap, error) from None
    if not partitions:
        raise TopicLayoutError(
            f"topic {source.topic} does not exist at {source.bootstrap}; publish to it first (`spoc publish`)"
        )
    # One process per partition by default, even beyond the cores: a process per core
    # would leave one with twice the partitions of another (3 partitions on 2 cores).
    workers = max(1, min(workers or partitions, partitions, MAX_WORKERS))
    return [
        TopicShare(source.bootstrap, source.topic, tuple(range(k, partitions, workers)), policy) for k in range(workers)
    ]


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
