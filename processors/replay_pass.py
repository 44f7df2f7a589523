"""One replay pass: JSONL lines -> validation -> dedup -> ledger core -> facts and decisions."""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.core import Erasure, LedgerCore, LedgerRecord, Position
from ledger.dedup import DedupIndex, Verdict
from ledger.policy import Policy
from ledger.relationship import OWNER_EVENTS
from ledger.store import LedgerStore
from processors.sources import read_lines, source_name
from projections.duckdb_store import AnalyticsStore, rejected_row
from schemas.events import EmployeeDeparted
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


LedgerSink = Callable[[list[LedgerRecord], list[Erasure], str, int], int]
"""Stores a flush's decisions and erasures for ``source`` up to ``offset``; returns events written."""


def partition_of(customer_id: str, partitions: int) -> int:
    """A stable partition for a customer, the same in every process (unlike ``hash``)."""
    return zlib.crc32(customer_id.encode()) % partitions


class ReplayPass:
    """One pass over the inputs: validate, deduplicate, drive the core, flush facts.

    With ``partition=(k, n)`` it processes only the customers of partition k of n
    (plus every employee departure, a broadcast), as a Kafka partition would;
    every partition still reads and deduplicates the whole input, so all agree on
    what is new, and partition 0 alone reports rejections and duplicates.
    """

    def __init__(
        self, analytics: AnalyticsStore, ledger_sink: LedgerSink, policy: Policy,
        partition: tuple[int, int] = (0, 1),
    ) -> None:
        self.analytics = analytics
        self.ledger_sink = ledger_sink
        self.core = LedgerCore(policy)
        self.dedup = DedupIndex()
        self.summary = ReplaySummary()
        self.rejected_rows: list[tuple[Any, ...]] = []
        self.seq = 0
        self.latest: datetime | None = None
        self.partition, self.partitions = partition
        self.reporting = self.partition == 0

    def run_file(self, path: str, progress: Callable[[int], None] | None) -> None:
        source = source_name(path)
        core, dedup, summary = self.core, self.dedup, self.summary
        partition, partitions, reporting = self.partition, self.partitions, self.reporting
        offset = 0
        for offset, raw in read_lines(path):
            self.seq += 1
            position = Position(source, offset, self.seq)
            event = decode(raw)
            if type(event) is Rejection:
                if reporting:
                    self._reject(event, raw, position)
            else:
                verdict = dedup.check(event.event_id, content_digest(event))
                if verdict is Verdict.NEW:
                    if self.latest is None or event.occurred_at > self.latest:
                        self.latest = event.occurred_at
                    if isinstance(event, EmployeeDeparted):
                        summary.accepted += reporting
                        core.process(event, position)
                    elif partitions == 1 or partition_of(event.customer_id, partitions) == partition:
                        summary.accepted += 1
                        core.process(event, position)
                elif reporting:
                    if verdict is Verdict.DUPLICATE:
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
        summary.customers = len(core.customers)
        summary.ledger_events_written += self.ledger_sink(records, erasures, source, offset)


def store_in(ledger: LedgerStore) -> LedgerSink:
    def sink(records: list[LedgerRecord], erasures: list[Erasure], source: str, offset: int) -> int:
        written = ledger.record(records, source, offset) if offset else 0
        ledger.erase(erasures)
        return written

    return sink


