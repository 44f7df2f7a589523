"""One replay pass: JSONL lines or topic messages through the intake step (validation, dedup, core) into the stores."""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ledger.core import Erasure, LedgerRecord, Position
from ledger.intake import Intake
from ledger.policy import Policy
from ledger.relationship import OWNER_EVENTS
from ledger.store import LedgerStore
from processors.kafka.reading import Incoming
from processors.runtime.heap import settle
from processors.sources import read_lines, source_name
from projections.duckdb_store import AnalyticsStore

CHUNK = 20_000
# DuckDB's buffers in each replay process.  Unlimited, DuckDB keeps every block of the
# rebuild's transaction in memory, growing with the input; capped, it writes them out.
# 1M touchpoints on 2 processes: largest process 555 -> 472 MiB, parent 318 -> 250 MiB,
# about 5% slower.
DUCKDB_MEMORY = "128MB"


@dataclass
class ReplaySummary:
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    customers: int = 0
    owner_changes: int = 0
    handoffs: int = 0
    silo_handoffs: int = 0
    customers_erased: int = 0
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
            ("customers erased", f"{self.customers_erased:,}"),
            ("ledger events written", f"{self.ledger_events_written:,}"),
            ("time", f"{self.seconds:.2f} s ({self.events_per_second:,.0f} events/s)"),
        ]
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


@dataclass(frozen=True, slots=True)
class Flush:
    """A flush's ledger output: the decisions and erasures of ``source`` up to ``offset``."""

    source: str
    offset: int | None
    """The last input position read (None: nothing was read)."""
    lines: int
    """Input lines or messages read since the pass's previous flush."""
    records: list[LedgerRecord]
    erasures: list[Erasure]


LedgerSink = Callable[[Flush], int]
"""Stores a flush; returns how many ledger events it wrote."""


def partition_of(customer_id: str, partitions: int) -> int:
    """A stable partition for a customer, the same in every process (unlike ``hash``)."""
    return zlib.crc32(customer_id.encode()) % partitions


class ReplayPass:
    """One pass over an input: the shared intake step, flushed in chunks to the stores.

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
        index, partitions = partition
        owns = None if partitions == 1 else (lambda customer_id: partition_of(customer_id, partitions) == index)
        self.intake = Intake(policy, owns)
        self.summary = ReplaySummary()
        self.seq = 0
        self.flushed_seq = 0
        self.reporting = index == 0

    @property
    def latest(self) -> datetime | None:
        return self.intake.latest

    def run_file(self, path: str) -> None:
        """A JSONL file, line by line.  Call it within :func:`~processors.runtime.heap.chunked_collection`."""
        source = source_name(path)
        take, reporting = self.intake.take, self.reporting
        offset: int | None = None
        for offset, raw in read_lines(path):
            self.seq += 1
            take(raw, Position(source, offset, self.seq), reporting=reporting)
            if self.seq % CHUNK == 0:
                self.flush(source, offset)
                # Its chunks make no reference cycles (tests/integration/test_replay_heap.py); the
                # first settle still collects, for what setting up the stores left.
                settle(collect=self.seq == CHUNK)
        self.flush(source, offset)

    def run_messages(self, source: str, messages: list[Incoming]) -> None:
        """One chunk of a topic partition, in offset order (the offset orders its events, as live).

        Call it within :func:`~processors.runtime.heap.chunked_collection`, around all the chunks.
        """
        take = self.intake.take
        for message in messages:
            take(message.value, Position(source, message.offset, message.offset), reporting=not message.broadcast_copy)
        self.seq += len(messages)
        self.flush(source, messages[-1].offset if messages else None)
        settle()

    def flush(self, source: str, offset: int | None) -> None:
        batch = self.intake.drain()
        summary, counts = self.summary, self.intake.counts
        self.analytics.write_batch(batch)
        touches = batch.touches
        summary.accepted, summary.duplicates, summary.rejected = counts.accepted, counts.duplicates, counts.rejected
        summary.handoffs += sum(1 for f in touches if f.handoff is not None)
        summary.silo_handoffs += sum(1 for f in touches if f.handoff is not None and f.handoff.cross_department)
        summary.owner_changes += sum(1 for r in batch.records if isinstance(r.event, OWNER_EVENTS))
        summary.customers = len(self.intake.core.customers)
        summary.customers_erased += len(batch.erasures)
        lines, self.flushed_seq = self.seq - self.flushed_seq, self.seq
        summary.ledger_events_written += self.ledger_sink(Flush(source, offset, lines, batch.records, batch.erasures))


def combine(total: ReplaySummary, part: ReplaySummary) -> None:
    """Add the summary of a pass over other customers (another partition) to ``total``."""
    total.accepted += part.accepted
    total.duplicates += part.duplicates
    total.rejected.update(part.rejected)
    total.customers += part.customers
    total.owner_changes += part.owner_changes
    total.handoffs += part.handoffs
    total.silo_handoffs += part.silo_handoffs
    total.customers_erased += part.customers_erased
    total.ledger_events_written += part.ledger_events_written


def store_in(ledger: LedgerStore) -> LedgerSink:
    def sink(flush: Flush) -> int:
        written = ledger.record(flush.records, flush.source, flush.offset) if flush.offset is not None else 0
        ledger.erase(flush.erasures)
        return written

    return sink


