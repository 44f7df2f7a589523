"""One input partition's ledger state, and which of its effects still have to happen.

The state is restored from the partition's last checkpoint and the partition's input
after it (Kafka is the log of record): the worker feeds those messages through the
same intake step as ``spoc replay``.  Effects are filtered by position, so re-processing is a no-op:
ledger events only past the ledger store's recorded offset, output messages only
past the last one found on each output partition.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from ledger.intake import Intake
from ledger.policy import Policy
from ledger.records import Erasure, LedgerRecord, Position
from ledger.relationship import OWNER_EVENTS
from processors.kafka.marks import Mark, Outgoing, beyond
from processors.kafka.reading import Incoming
from processors.kafka.topics import FACTS, partition_source
from processors.live.outputs import facts_of, outputs_for
from processors.live.sealing import Split, split_facts
from processors.runtime.state_store import ScratchState
from schemas.facts import InputFactsV1

# A partition holds a share of the customers: a smaller duplicate filter than a whole-file replay.
PARTITION_DEDUP_FILTER_BITS = 1 << 23


@dataclass(frozen=True, slots=True)
class OwnerView:
    """What ``GET /owners/{customer_id}`` answers."""

    owner_id: str | None
    since: datetime
    reason: str
    ledger_event_id: str

    def as_json(self) -> dict[str, Any]:
        return {
            "owner_id": self.owner_id, "since": self.since.isoformat(),
            "reason": self.reason, "ledger_event_id": self.ledger_event_id,
        }


@dataclass
class Effects:
    """What a stretch of one partition asks of the outside world, up to ``last_offset``."""

    last_offset: int
    records: list[LedgerRecord] = field(default_factory=list)
    erasures: list[Erasure] = field(default_factory=list)
    outgoing: list[Outgoing] = field(default_factory=list)
    facts: Split = field(default_factory=list)
    """The sink's facts not yet published, to be sealed with the customers' keys and sent after ``outgoing``."""
    owners: dict[str, OwnerView | None] = field(default_factory=dict)
    """The latest owner of each customer whose owner changed; None: forget the customer."""
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    fresh_timestamps_ms: list[int] = field(default_factory=list)
    """Kafka timestamps of the messages processed for the first time (for the latency histogram)."""


class PartitionLedger:
    def __init__(
        self, topic: str, partition: int, policy: Policy, recorded: int | None, tails: dict[str, Mark | None],
        restored: tuple[Intake, int] | None = None, scratch: ScratchState | None = None,
    ) -> None:
        """``restored``: the state after the input up to an offset (a checkpoint), and that offset, restored
        into ``scratch``; which keeps the customers and folded ids beyond the cache on disk, and is
        closed with the state (:meth:`close`)."""
        self.topic = topic
        self.partition = partition
        self.source = partition_source(topic, partition)
        self.scratch = scratch
        if restored is None:
            self.intake, self.next_offset = Intake(
                policy, dedup_filter_bits=PARTITION_DEDUP_FILTER_BITS,
                customers=None if scratch is None else scratch.customers,
                folded_ids=None if scratch is None else scratch.ids, announce_follow_ups=True,
            ), 0
        else:
            self.intake, self.next_offset = restored[0], restored[1] + 1
        self.made_up_to = self.next_offset - 1
        """The last offset whose effects are all durable (:meth:`done`)."""
        self.policy_header = msgspec.json.encode(policy)
        self.recorded = recorded
        """The ledger store's position for this partition: effects up to it are stored."""
        self.tails = tails
        """The mark of the last message on each output topic's partition: published up to it."""
        self._replayed_owners: dict[str, OwnerView | None] = {}
        """Owners seen again in input whose effects were made before (a rebuild): written once the state
        has caught up with the ledger store's position, each customer's last only, so that a rebuild
        read in chunks does not put back an owner that a later chunk erases."""

    def close(self) -> None:
        """Free the customers' memory and scratch space (the state is not used again)."""
        if self.scratch is not None:
            self.scratch.close()

    def process(self, messages: list[Incoming]) -> Effects:
        """Run messages (in offset order) through the core; collect the effects not yet made.

        Counts and timestamps cover only the messages past the ledger store's
        position: the ones processed for the first time.
        """
        effects = Effects(last_offset=messages[-1].offset)
        recorded = self.recorded
        first_fresh = next(
            (i for i, m in enumerate(messages) if recorded is None or m.offset > recorded), len(messages)
        )
        replayed = messages[:first_fresh]
        self._run(replayed, effects, self._replayed_owners)
        caught_up = first_fresh < len(messages) or (replayed and replayed[-1].offset == recorded)
        if caught_up and self._replayed_owners:
            effects.owners.update(self._replayed_owners)  # the rebuild's net owners, once
            self._replayed_owners.clear()
        counts = self.intake.counts
        before = counts.accepted, counts.duplicates, Counter(counts.rejected)
        self._run(messages[first_fresh:], effects, effects.owners)
        effects.accepted, effects.duplicates = counts.accepted - before[0], counts.duplicates - before[1]
        effects.rejected = counts.rejected - before[2]
        effects.fresh_timestamps_ms = [m.timestamp_ms for m in messages[first_fresh:] if m.timestamp_ms is not None]
        self.next_offset = effects.last_offset + 1
        return effects

    def _run(self, messages: list[Incoming], effects: Effects, owners: dict[str, OwnerView | None]) -> None:
        intake, source, recorded, tails = self.intake, self.source, self.recorded, self.tails
        facts_tail = tails.get(FACTS)
        facts: list[tuple[int, InputFactsV1]] = []
        for message in messages:
            offset = message.offset
            intake.take(
                message.value, Position(source, offset, offset), reporting=not message.broadcast_copy, key=message.key
            )
            batch = intake.drain()
            if recorded is None or offset > recorded:
                effects.records.extend(batch.records)
                effects.erasures.extend(batch.erasures)
            for out in outputs_for(batch, offset, message.key, self.topic, self.partition):
                if beyond(out.mark, tails.get(out.topic)):
                    effects.outgoing.append(out)
            message_facts = facts_of(batch)
            if message_facts is not None and beyond((offset, 0), facts_tail):
                facts.append((offset, message_facts))
            _note_owners(batch.records, batch.erasures, owners)
        effects.facts.extend(split_facts(facts))

    @property
    def all_made(self) -> bool:
        """Whether every message the state has taken in has its effects made (it may be checkpointed)."""
        return self.made_up_to == self.next_offset - 1

    def done(self, effects: Effects) -> None:
        """The effects are durable: move the recorded positions past them."""
        self.made_up_to = max(self.made_up_to, effects.last_offset)
        if self.recorded is None or effects.last_offset > self.recorded:
            self.recorded = effects.last_offset
        for out in effects.outgoing:
            self.tails[out.topic] = out.mark
        if effects.facts:  # published as messages marked with their last input message
            self.tails[FACTS] = (effects.facts[-1][0], 0)


def _note_owners(records: list[LedgerRecord], erasures: list[Erasure], owners: dict[str, OwnerView | None]) -> None:
    for record in records:
        event = record.event
        if isinstance(event, OWNER_EVENTS):
            owners[record.customer_id] = OwnerView(
                event.owner_id, event.timestamp, event.reason, f"{event.originator_id}:{event.originator_version}"
            )
    for erasure in erasures:
        owners[erasure.customer_id] = None
