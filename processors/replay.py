"""Batch replay: JSONL files through the ledger core into DuckDB and the ledger store.

Replay rebuilds the analytics file from the given inputs in one transaction (a
reader sees the old tables or the new ones, never half), and appends the ledger
decisions to the ledger store with their input positions, so running the same
input again writes nothing new there.  Large inputs are split by customer over
several processes (``processors/partitioned.py``); the result is the same.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from ledger.errors import TerminalError
from ledger.policy import DEFAULT_POLICY, Policy
from ledger.store import LedgerStore
from processors.partitioned import replay_partitioned
from processors.replay_pass import ReplayPass, ReplaySummary, store_in
from processors.sources import STDIN, check_readable
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
        if workers > 1:
            summary, latest = replay_partitioned(inputs, analytics, ledger, policy, workers, progress)
        else:
            run = ReplayPass(analytics, store_in(ledger), policy)
            for path in inputs:
                run.run_file(path, progress)
            summary, latest = run.summary, run.latest
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
