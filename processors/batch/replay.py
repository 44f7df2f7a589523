"""Batch replay: JSONL files or a topic through the ledger core into DuckDB and the ledger store.

Replay continues the history an analytics file holds (``history``) in one
transaction (a reader sees the old tables or the new ones, never half), and
appends the ledger decisions to the ledger store with their input positions, so
running the same input again writes nothing new there.  Large inputs are split by
customer over several processes (``split``); the result is the same.
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
from ledger.store import LedgerStore, persistence_env
from processors.batch.history import (
    History,
    HistoryError,
    Input,
    clear_history,
    forget_unreferenced,
    holds_file_history,
    identify,
    read_history,
    record_history,
    state_dir,
)
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
from processors.runtime.state_store import DEFAULT_CACHE_MB
from processors.sources import STDIN, check_readable, source_name
from projections.duckdb_store import AnalyticsStore, compact, remove_stale_copies

# Below this much input, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 8 * 1024 * 1024
MAX_WORKERS = 8


def default_workers(paths: list[str]) -> int:
    """Processes for files of these sizes (stdin never gets here: ``_file_shares`` gives it one)."""
    if sum(os.path.getsize(p) for p in paths) < PARALLEL_MIN_BYTES:
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
    rebuild: bool = False,
    state_cache_mb: float = DEFAULT_CACHE_MB,
) -> ReplaySummary:
    """Replay files in order into the history an analytics file holds, or a topic into a new one.

    Files continue the file's history (``processors/batch/history.py``): inputs it holds
    already (by content) are skipped, the rest go through the core restored as the last
    replay left it, and their facts are added to its tables.  ``rebuild`` starts over.
    A topic is replayed partition by partition as the live worker processes it, into a
    new file (or with ``rebuild``); its positions are the worker's, so replaying into the
    live ledger store writes nothing new.  Each process keeps ``state_cache_mb`` of the
    customers' working state in memory, the rest in scratch space under ``<db>.state/``.
    """
    started = time.perf_counter()
    path = Path(analytics_path)
    if isinstance(inputs, list):
        check_readable(inputs)
    persistence_env(ledger_url)  # a bad ledger URL is refused even when every input is held already
    analytics = AnalyticsStore(path, DUCKDB_MEMORY)
    remove_stale_copies(path)  # a compaction's copy a killed replay left (it may hold erased rows)
    starting_over = rebuild  # as the user asked: a file built under another policy is refused otherwise
    try:
        if isinstance(inputs, TopicInput):
            # A topic is replayed from its beginning: it rebuilds a file of a topic, never a history of files.
            if not rebuild and holds_file_history(analytics.con):
                raise HistoryError(f"{path} holds a replayed history of files; replay a topic into a new --db, or with --rebuild")
            rebuild, held = True, History({}, [])
        else:
            held = History({}, []) if rebuild else read_history(analytics.con, path)
    except BaseException:
        analytics.close()
        raise
    if not starting_over:
        analytics.refuse_another_policy(
            policy,
            "its ledger store holds that policy's decisions. Write this run to a new --db (a what-if run), "
            f"or delete {analytics_path} and its ledger store first",
        )
    directory = state_dir(path)
    added: list[Input] = []
    inputs_held = 0
    if isinstance(inputs, TopicInput):
        shares: Sequence[Share] = _topic_shares(inputs, policy, workers, directory, state_cache_mb)
    else:
        added, inputs_held = _new_inputs(inputs, held, directory / "spool")
        if not added:  # the history holds every input: nothing to do, and its state stays as it is
            analytics.close()
            forget_unreferenced(directory, held.states)  # the spooled stdin
            return ReplaySummary(inputs_held=inputs_held, seconds=time.perf_counter() - started)
        shares = _file_shares(added, policy, directory, held, workers, state_cache_mb)
    ledger = LedgerStore(ledger_url)
    try:
        analytics.con.begin()
        ledger.refuse_another_policy(
            policy, "replay into a new ledger store (--ledger, or leave SPOC_LEDGER_URL unset to get one beside a new "
            "--db), or give the --policy it was built with",
        )
        analytics.create_schema(replace=rebuild)
        if rebuild:
            clear_history(analytics.con)
        store = _reporting(store_in(ledger), progress)
        result = run_shares(shares, analytics, store) if len(shares) > 1 else shares[0].run(analytics, store)
        analytics.write_settings(
            policy,
            as_of=as_of.isoformat() if as_of else None,
            latest_event_at=result.latest.isoformat() if result.latest else None,
        )
        if not isinstance(inputs, TopicInput):
            record_history(analytics.con, added, list(result.states), start=len(held.inputs))
        analytics.con.commit()
    except BaseException:
        analytics.con.rollback()
        raise
    finally:
        analytics.close()
        ledger.close()
    forget_unreferenced(directory, list(result.states))
    summary = result.summary
    summary.inputs_held = inputs_held
    if summary.customers_erased:
        compact(path)
    summary.seconds = time.perf_counter() - started
    return summary


def _new_inputs(paths: list[str], held: History, spool: Path) -> tuple[list[Input], int]:
    """The inputs whose content the history does not hold yet, in order; and how many it held."""
    added: list[Input] = []
    seen = set(held.inputs)
    for path in paths:
        identified = identify(path, spool)
        if identified.content_sha256 not in seen:
            seen.add(identified.content_sha256)
            added.append(identified)
    return added, len(paths) - len(added)


def _file_shares(
    inputs: list[Input], policy: Policy, directory: Path, held: History, workers: int | None, cache_mb: float
) -> list[Share]:
    if held.shares is not None:
        shares = held.shares  # the history's state is kept per share of the customers
    elif any(i.source == source_name(STDIN) for i in inputs):
        shares = 1  # as stdin was given: a pipe's input is small enough for one process
    else:
        shares = workers or default_workers([i.path for i in inputs])
    restore = {state.share: state for state in held.states}
    return [FileShare(tuple(inputs), policy, directory, cache_mb, k, shares, restore.get(k)) for k in range(shares)]


def _topic_shares(
    source: TopicInput, policy: Policy, workers: int | None, directory: Path, cache_mb: float
) -> list[Share]:
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
        TopicShare(source.bootstrap, source.topic, tuple(range(k, partitions, workers)), policy, directory, cache_mb)
        for k in range(workers)
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
