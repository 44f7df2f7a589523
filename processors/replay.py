"""Batch replay: JSONL files through the ledger core into DuckDB and the ledger store.

Replay rebuilds the analytics file from the given inputs in one transaction (a
reader sees the old tables or the new ones, never half), and appends the ledger
decisions to the ledger store with their input positions, so running the same
input again writes nothing new there.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ledger.core import LedgerCore, Position
from ledger.dedup import DedupIndex, Verdict
from ledger.policy import DEFAULT_POLICY, Policy
from ledger.relationship import OWNER_EVENTS
from ledger.store import LedgerStore
from processors.sources import check_readable, read_lines, source_name
from projections.duckdb_store import AnalyticsStore, rejected_row
from schemas.validation import EVENT_ID_CONFLICT, Rejection, content_digest, decode

CHUNK = 20_000


@dataclass
class ReplaySummary:
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    customers: int = 0
    owner_changes: int = 0
    handoffs: int = 0
    silo_handoffs: int = 0
    ledger_events_written: int = 0
    seconds: float = 0.0

    @property
    def lines(self) -> int:
        return self.accepted + self.duplicates + sum(self.rejected.values())

    @property
    def events_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0

    def render(self) -> str:
        rows = [
            ("lines read", f"{self.lines:,}"),
            ("accepted", f"{self.accepted:,}"),
            ("duplicates", f"{self.duplicates:,}"),
            ("rejected", f"{sum(self.rejected.values()):,}"),
            *((f"  {reason}", f"{count:,}") for reason, count in sorted(self.rejected.items())),
            ("customers", f"{self.customers:,}"),
            ("owner changes", f"{self.owner_changes:,}"),
            ("handoffs", f"{self.handoffs:,} ({self.silo_handoffs:,} across departments)"),
            ("ledger events written", f"{self.ledger_events_written:,}"),
            ("time", f"{self.seconds:.2f} s ({self.events_per_second:,.0f} events/s)"),
        ]
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


class _Replay:
    def __init__(self, analytics: AnalyticsStore, ledger: LedgerStore, policy: Policy) -> None:
        self.analytics = analytics
        self.ledger = ledger
        self.core = LedgerCore(policy)
        self.dedup = DedupIndex()
        self.summary = ReplaySummary()
        self.rejected_rows: list[tuple[Any, ...]] = []
        self.seq = 0
        self.latest: datetime | None = None

    def run_file(self, path: str, progress: Callable[[int], None] | None) -> None:
        source = source_name(path)
        core, dedup, summary = self.core, self.dedup, self.summary
        offset = 0
        for offset, raw in read_lines(path):
            self.seq += 1
            position = Position(source, offset, self.seq)
            event = decode(raw)
            if type(event) is Rejection:
                self._reject(event, raw, position)
            else:
                verdict = dedup.check(event.event_id, content_digest(event))
                if verdict is Verdict.NEW:
                    summary.accepted += 1
                    if self.latest is None or event.occurred_at > self.latest:
                        self.latest = event.occurred_at
                    core.process(event, position)
                elif verdict is Verdict.DUPLICATE:
                    summary.duplicates += 1
                else:
                    self._reject(
                        Rejection(
                            EVENT_ID_CONFLICT,
                            f"event_id {event.event_id!r} was seen before with different content; "
                            "give each distinct event its own event_id",
                            "event_id",
                        ),
                        raw,
                        position,
                    )
            if self.seq % CHUNK == 0:
                self.flush(source, offset)
                if progress is not None:
                    progress(self.seq)
        self.flush(source, offset)

    def _reject(self, rejection: Rejection, raw: bytes, position: Position) -> None:
        self.summary.rejected[rejection.reason] += 1
        self.rejected_rows.append(rejected_row(rejection, raw, position))

    def flush(self, source: str, offset: int) -> None:
        core, summary = self.core, self.summary
        touches, controls, records, erasures = (
            core.touch_facts, core.control_facts, core.ledger_records, core.erasures,
        )
        core.touch_facts, core.control_facts, core.ledger_records, core.erasures = [], [], [], []
        self.analytics.write_facts(touches, controls, records, erasures, self.rejected_rows)
        self.rejected_rows = []
        summary.handoffs += sum(1 for f in touches if f.handoff is not None)
        summary.silo_handoffs += sum(1 for f in touches if f.handoff is not None and f.handoff.cross_department)
        summary.owner_changes += sum(1 for r in records if isinstance(r.event, OWNER_EVENTS))
        if offset:
            summary.ledger_events_written += self.ledger.record(records, source, offset)
        self.ledger.erase(erasures)


def replay(
    inputs: list[str],
    analytics_path: str | Path,
    ledger_url: str,
    *,
    as_of: datetime | None = None,
    policy: Policy = DEFAULT_POLICY,
    progress: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """Replay ``inputs`` in order into a rebuilt analytics file and the ledger store."""
    check_readable(inputs)
    started = time.perf_counter()
    analytics = AnalyticsStore(analytics_path)
    ledger = LedgerStore(ledger_url)
    try:
        analytics.con.begin()
        analytics.create_schema(replace=True)
        run = _Replay(analytics, ledger, policy)
        for path in inputs:
            run.run_file(path, progress)
        analytics.write_settings(
            policy,
            as_of=as_of.isoformat() if as_of else None,
            latest_event_at=run.latest.isoformat() if run.latest else None,
        )
        analytics.con.commit()
        run.summary.customers = len(run.core.customers)
        run.summary.seconds = time.perf_counter() - started
        return run.summary
    except BaseException:
        analytics.con.rollback()
        raise
    finally:
        analytics.close()
        ledger.close()
