"""Raw input in, ledger output out: validation, deduplication and the core, for every driver.

``spoc replay`` feeds it file lines, the live worker feeds it Kafka messages;
both then drain the same :class:`Batch`, so what is accepted, counted, rejected
and decided cannot differ between them.  No I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime

from ledger.core import Customer, LedgerCore
from ledger.dedup import FILTER_BITS, DedupIndex, FoldedIds, Verdict
from ledger.followups import Announcement, FollowUpFact
from ledger.policy import Policy
from ledger.records import ControlFact, Erasure, LedgerRecord, Position, TouchFact
from schemas.events import EmployeeAway, EmployeeDeparted, EmployeeReturned, Touchpoint
from schemas.validation import EVENT_ID_CONFLICT, WRONG_KEY, Rejection, content_digest, decode

BROADCAST = (EmployeeDeparted, EmployeeAway, EmployeeReturned)
"""Events that concern every customer: each partition applies them (SPEC §6, §9)."""


@dataclass(frozen=True, slots=True)
class RejectedInput:
    rejection: Rejection
    raw: bytes
    position: Position


@dataclass(slots=True)
class Batch:
    """Everything one stretch of input produced, in input order."""

    touches: list[TouchFact] = field(default_factory=list)
    controls: list[ControlFact] = field(default_factory=list)
    records: list[LedgerRecord] = field(default_factory=list)
    erasures: list[Erasure] = field(default_factory=list)
    rejected: list[RejectedInput] = field(default_factory=list)
    follow_ups: list[FollowUpFact] = field(default_factory=list)
    announcements: list[Announcement] = field(default_factory=list)
    """Live only: follow-ups the stream's time made due, and announced ones that closed."""


@dataclass
class IntakeCounts:
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


def wrong_key(key: bytes, customer_id: str) -> Rejection:
    shown = key[:64].decode("utf-8", "backslashreplace") + ("…" if len(key) > 64 else "")
    return Rejection(
        WRONG_KEY,
        f"the message key {shown!r} is not its customer_id {customer_id!r}; key every message by its "
        "customer_id, so that one partition holds all of a customer's events in order",
        "customer_id",
    )


def conflict(event_id: str) -> Rejection:
    return Rejection(
        EVENT_ID_CONFLICT,
        f"event_id {event_id!r} was seen before with different content; give each distinct event its own event_id",
        "event_id",
    )


class Intake:
    """One input stream's validation, duplicate index and ledger core.

    ``owns(customer_id)`` limits the core to some customers (one partition of a
    split input); employee departures are broadcasts and always reach the core.  A
    stream that does not *report* (a partition that is not the first, or a
    broadcast copy of a message) still drives the core but leaves counting,
    rejections and the departure's own record to the stream that reports it.
    """

    def __init__(
        self, policy: Policy, owns: Callable[[str], bool] | None = None, dedup_filter_bits: int = FILTER_BITS,
        customers: MutableMapping[str, Customer] | None = None, folded_ids: FoldedIds | None = None,
        *, announce_follow_ups: bool = False,
    ) -> None:
        """``customers`` and ``folded_ids`` keep the core's customers and the duplicate index's older ids
        (in memory by default; a driver may give stores that keep them on disk).  ``announce_follow_ups``:
        see :class:`~ledger.core.LedgerCore`."""
        self.owns = owns
        self.core = LedgerCore(policy, customers, announce_follow_ups=announce_follow_ups)
        self.dedup = DedupIndex(dedup_filter_bits, folded_ids)
        self.counts = IntakeCounts()
        self.latest: datetime | None = None
        self._controls: list[ControlFact] = []
        self._rejected: list[RejectedInput] = []

    def take(self, raw: bytes, position: Position, *, reporting: bool = True, key: bytes | None = None) -> None:
        """Process one raw message (a JSONL line or a Kafka message value).

        ``key``: a Kafka message's key. A customer's event keyed by anything but its
        ``customer_id`` is rejected (``wrong_key``): the producer's partitioner may have put it
        in another partition than the customer's other events. Broadcasts and unkeyed messages
        (and file lines) are not checked.
        """
        event = decode(raw)
        if isinstance(event, Rejection):
            if reporting:
                self._reject(event, raw, position)
            return
        if key is not None and not isinstance(event, BROADCAST) and key != event.customer_id.encode():
            if reporting:
                self._reject(wrong_key(key, event.customer_id), raw, position)
            return
        verdict = self.dedup.check(event.event_id, content_digest(event))
        if verdict is not Verdict.NEW:
            if reporting:
                if verdict is Verdict.DUPLICATE:
                    self.counts.duplicates += 1
                else:
                    self._reject(conflict(event.event_id), raw, position)
            return
        if self.latest is None or event.occurred_at > self.latest:
            self.latest = event.occurred_at
        if isinstance(event, BROADCAST):
            broadcast = True
        elif self.owns is not None and not self.owns(event.customer_id):
            return
        else:
            broadcast = False
        if reporting or not broadcast:
            self.counts.accepted += 1
            if type(event) is not Touchpoint:
                self._controls.append(ControlFact(event, position))
        self.core.process(event, position)

    def drain(self) -> Batch:
        """Hand over what was produced since the last drain."""
        core = self.core
        follow_ups = core.follow_ups
        batch = Batch(
            core.touch_facts, self._controls, core.ledger_records, core.erasures, self._rejected,
            follow_ups.facts, follow_ups.announcements or [],
        )
        core.touch_facts, core.ledger_records, core.erasures = [], [], []
        follow_ups.facts = []
        if follow_ups.announcements:
            follow_ups.announcements = []
        self._controls, self._rejected = [], []
        return batch

    def _reject(self, rejection: Rejection, raw: bytes, position: Position) -> None:
        self.counts.rejected[rejection.reason] += 1
        self._rejected.append(RejectedInput(rejection, raw, position))
