"""What one replay process works on: a partition of the customers of files, or partitions of a topic.

A share runs its passes into one analytics store and hands every flush to a
ledger sink.  ``sharers`` says how many shares deliver each flush of a source:
every file share reads every line (so each flush is complete only when all have
delivered it), while a topic partition belongs to one share alone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from aiokafka.errors import KafkaConnectionError

from ledger.policy import Policy
from processors.batch.history import Input, StateFile, read_state, write_state
from processors.batch.replay_pass import (
    CHUNK,
    LedgerSink,
    ReplayPass,
)
from processors.batch.summary import ReplaySummary
from processors.kafka.reading import history
from processors.kafka.topics import partition_source, unreachable
from processors.runtime.heap import chunked_collection
from processors.runtime.state_store import CacheBudget, spilling
from projections.duckdb_store import AnalyticsStore

SCRATCH = "scratch"
"""Under the state directory: where each replay process keeps the customers beyond its cache."""


@dataclass(frozen=True)
class ShareResult:
    summary: ReplaySummary
    latest: datetime | None
    states: tuple[StateFile, ...] = ()
    """Where each share's state after this run was written (file shares); the next run continues from them."""


class Share(Protocol):
    @property
    def sharers(self) -> int: ...

    def run(self, analytics: AnalyticsStore, sink: LedgerSink) -> ShareResult: ...


@dataclass(frozen=True)
class FileShare:
    """The customers of partition ``partition`` of ``partitions`` in JSONL files, read in order,
    continuing the state in ``restore`` (None: a new history), its new state written to ``state_dir``."""

    inputs: tuple[Input, ...]
    policy: Policy
    state_dir: Path
    cache_mb: float
    partition: int = 0
    partitions: int = 1
    restore: StateFile | None = None

    @property
    def sharers(self) -> int:
        return self.partitions

    def run(self, analytics: AnalyticsStore, sink: LedgerSink) -> ShareResult:
        with spilling(self.state_dir / SCRATCH, CacheBudget(self.cache_mb)) as scratch:
            restored = None if self.restore is None else read_state(self.state_dir, self.restore, scratch)
            run = ReplayPass(analytics, sink, self.policy, (self.partition, self.partitions), restored, scratch)
            with chunked_collection():
                for held in self.inputs:
                    run.run_file(held)
            state = write_state(self.state_dir, self.partition, self.partitions, run.state)
        return ShareResult(run.summary, run.latest, (state,))


@dataclass(frozen=True)
class TopicShare:
    """Some partitions of a topic, each from its beginning to its end when the share starts reading it.

    Each partition is its own stream with its own duplicate index, positions and
    broadcast copies, exactly as the live worker processes it.
    """

    bootstrap: str
    topic: str
    partitions: tuple[int, ...]
    policy: Policy
    state_dir: Path
    cache_mb: float

    @property
    def sharers(self) -> int:
        return 1

    def run(self, analytics: AnalyticsStore, sink: LedgerSink) -> ShareResult:
        try:
            return asyncio.run(self._run(analytics, sink))
        except KafkaConnectionError as error:
            raise unreachable(self.bootstrap, error) from None

    async def _run(self, analytics: AnalyticsStore, sink: LedgerSink) -> ShareResult:
        summary, latest = ReplaySummary(), None
        budget = CacheBudget(self.cache_mb)
        with chunked_collection():
            for partition in self.partitions:
                with spilling(self.state_dir / SCRATCH, budget) as scratch:
                    run = ReplayPass(analytics, sink, self.policy, scratch=scratch)
                    source = partition_source(self.topic, partition)
                    async for messages in history(self.bootstrap, self.topic, partition, CHUNK):
                        run.run_messages(source, messages)
                summary.add(run.summary)
                if run.latest is not None and (latest is None or run.latest > latest):
                    latest = run.latest
        return ShareResult(summary, latest)
