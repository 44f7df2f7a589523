"""One replay pass: JSONL lines or topic messages through the intake step (validation, dedup, core) into the stores."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ledger.intake import Intake, IntakeCounts
from ledger.policy import Policy
from ledger.records import Erasure, LedgerRecord, Position
from ledger.relationship import OWNER_EVENTS
from ledger.store import LedgerStore
from processors.batch.history import Input, ShareState
from processors.batch.summary import ReplaySummary
from processors.kafka.reading import Incoming
from processors.runtime.heap import settle
from processors.runtime.state_store import ScratchState
from processors.sources import read_lines
from projections.duckdb_store import AnalyticsStore

CHUNK = 20_000
# DuckDB's buffers in each replay process.  Unlimited, DuckDB keeps every block of the
# rebuild's transaction in memory, growing with the input; capped, it writes them out.
# The cost is a few per cent of speed (docs/performance.md).
DUCKDB_MEMORY = "128MB"


@dataclass(frozen=True, slots=True)
class Flush:
    """A flush's ledger output: the decisions and erasures of ``source`` up to ``offset``."""

    number: int
    """The pass's n-th flush: every share of a split replay flushes after the same lines, so the
    n-th flushes of all shares together hold every decision of that stretch.  (Not the offset:
    a file that ends on a chunk boundary flushes twice at its last line.)"""
    source: str
    tracking: str
    """The ledger store's name for the input (a file's name with its content's hash; a topic partition)."""
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


@dataclass(frozen=True)
class OwnedCustomers:
    """The customers of partition ``index`` of ``partitions`` (a callable that pickles with the state)."""

    index: int
    partitions: int

    def __call__(self, customer_id: str) -> bool:
        return partition_of(customer_id, self.partitions) == self.index


class ReplayPass:
    """One pass over an input: the shared intake step, flushed in chunks to the stores.

    With ``partition=(k, n)`` it processes only the customers of partition k of n
    (plus every employee departure, a broadcast), as a Kafka partition would;
    every partition still reads and deduplicates the whole input, so all agree on
    what is new, and partition 0 alone reports rejections and duplicates.
    """

    def __init__(
        self, analytics: AnalyticsStore, ledger_sink: LedgerSink, policy: Policy,
        partition: tuple[int, int] = (0, 1), restored: ShareState | None = None,
        scratch: ScratchState | None = None,
    ) -> None:
        """``scratch`` keeps the customers and folded ids beyond the cache on disk (None: all in memory);
        a restored state was restored into it already."""
        self.analytics = analytics
        self.ledger_sink = ledger_sink
        index, partitions = partition
        owns = None if partitions == 1 else OwnedCustomers(index, partitions)
        if restored is None:
            self.intake, self.seq = Intake(
                policy, owns, customers=None if scratch is None else scratch.customers,
                folded_ids=None if scratch is None else scratch.ids,
            ), 0
        else:  # the history so far (processors/batch/history.py): its counts were reported by its own runs
            self.intake, self.seq = restored.intake, restored.seq
            self.intake.owns, self.intake.counts = owns, IntakeCounts()
        self.summary = ReplaySummary()
        self.flushed_seq = self.seq
        self.flushes = 0
        self.reporting = index == 0
        self._settled = False

    @property
    def state(self) -> ShareState:
        """What the next replay of the same history continues from."""
        return ShareState(self.intake, self.seq)

    @property
    def latest(self) -> datetime | None:
        return self.intake.latest

    def run_file(self, held: Input) -> None:
        """A JSONL file, line by line.  Call it within :func:`~processors.runtime.heap.chunked_collection`."""
        source, tracking = held.source, held.tracking
        take, reporting = self.intake.take, self.reporting
        offset: int | None = None
        for offset, raw in read_lines(held.path):
            self.seq += 1
            take(raw, Position(source, offset, self.seq), reporting=reporting)
            if self.seq % CHUNK == 0:
                self.flush(source, tracking, offset)
                # Its chunks make no reference cycles (tests/integration/test_replay_heap.py); the
                # first settle still collects, for what setting up the stores left.
                settle(collect=not self._settled)
                self._settled = True
        self.flush(source, tracking, offset)

    def run_messages(self, source: str, messages: list[Incoming]) -> None:
        """One chunk of a topic partition, in offset order (the offset orders its events, as live).

        Call it within :func:`~processors.runtime.heap.chunked_collection`, around all the chunks.
        """
        take = self.intake.take
        for message in messages:
            take(
                message.value, Position(source, message.offset, message.offset),
                reporting=not message.broadcast_copy, key=message.key,
            )
        self.seq += len(messages)
        self.flush(source, source, messages[-1].offset if messages else None)
        settle()

    def flush(self, source: str, tracking: str, offset: int | None) -> None:
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
        self.flushes += 1
        summary.ledger_events_written += self.ledger_sink(
            Flush(self.flushes, source, tracking, offset, lines, batch.records, batch.erasures)
        )


def store_in(ledger: LedgerStore) -> LedgerSink:
    def sink(flush: Flush) -> int:
        if flush.offset is None:  # an empty input: nothing decided
            return 0
        return ledger.apply(flush.records, flush.erasures, flush.tracking, flush.offset)

    return sink


