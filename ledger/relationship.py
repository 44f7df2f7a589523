"""The Relationship aggregate: a customer's ledger of owner decisions (SPEC §3, decided in ``ownership``).

Every event here is an auditable decision with its reason and the input event
that caused it.  Event timestamps are the triggering input's ``occurred_at``, so
replaying the same input gives the same ledger, byte for byte.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.ownership import PIN_TO_DEPARTED, PINNED, pin_survives

NAMESPACE = UUID("6f0e5d0c-3b1c-4d5e-9a8f-5c0c1e2d3a4b")



class Relationship(Aggregate):
    """One customer's relationship with the company: who their person is, and why."""

    class Opened(Aggregate.Created):
        customer_id: str

    class OwnerAssigned(Aggregate.Event):
        """The customer's first owner ever."""

        owner_id: str
        reason: str
        affinities: dict[str, float]
        trigger_event_id: str

        def apply(self, relationship: Relationship) -> None:
            relationship._take_owner(self.owner_id, self.timestamp, pinned=relationship.pinned)

    class OwnerChanged(Aggregate.Event):
        """A new owner, or none (``owner_id`` null) when a departure leaves no successor."""

        previous_owner_id: str | None
        owner_id: str | None
        reason: str
        affinities: dict[str, float]
        trigger_event_id: str

        def apply(self, relationship: Relationship) -> None:
            relationship._take_owner(self.owner_id, self.timestamp, pinned=pin_survives(relationship.pinned, self.reason))

    class Pinned(Aggregate.Event):
        employee_id: str
        trigger_event_id: str

        def apply(self, relationship: Relationship) -> None:
            relationship.pinned = True

    class PinRefused(Aggregate.Event):
        """``owner_pinned`` named an employee who has departed: they never own again."""

        employee_id: str
        reason: str
        trigger_event_id: str

        def apply(self, relationship: Relationship) -> None:
            pass

    class Unpinned(Aggregate.Event):
        trigger_event_id: str

        def apply(self, relationship: Relationship) -> None:
            relationship.pinned = False

    class Churned(Aggregate.Event):
        """``customer_churned``: recorded for the audit; the analytics read churn from the facts."""

        trigger_event_id: str

        def apply(self, relationship: Relationship) -> None:
            pass

    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        self.owner_id: str | None = None
        self.owner_since: datetime | None = None
        self.ever_owned = False
        self.pinned = False

    @staticmethod
    def create_id(customer_id: str, opening_event_id: str) -> UUID:
        """Derived from business keys, so "create if absent" is idempotent.

        The opening event makes a customer who returns after an erasure a new
        relationship, never a continuation of the erased one.
        """
        return uuid5(NAMESPACE, f"{customer_id}\x00{opening_event_id}")

    @classmethod
    def open(cls, customer_id: str, opening_event_id: str, at: datetime) -> Relationship:
        return cls._create(
            cls.Opened,
            id=cls.create_id(customer_id, opening_event_id),
            customer_id=customer_id,
            timestamp=at,
        )

    def _take_owner(self, owner_id: str | None, at: datetime, *, pinned: bool) -> None:
        self.owner_id = owner_id
        self.owner_since = at
        self.ever_owned = self.ever_owned or owner_id is not None
        self.pinned = pinned

    # Commands: each records one decision.

    def assign(self, owner_id: str | None, reason: str, affinities: dict[str, float], trigger: str, at: datetime) -> None:
        if not self.ever_owned and owner_id is not None:
            self.trigger_event(
                self.OwnerAssigned, timestamp=at, owner_id=owner_id, reason=reason,
                affinities=affinities, trigger_event_id=trigger,
            )
        else:
            self.trigger_event(
                self.OwnerChanged, timestamp=at, previous_owner_id=self.owner_id, owner_id=owner_id,
                reason=reason, affinities=affinities, trigger_event_id=trigger,
            )

    def pin(self, employee_id: str, trigger: str, at: datetime) -> None:
        if employee_id != self.owner_id:
            self.assign(employee_id, PINNED, {}, trigger, at)
        self.trigger_event(self.Pinned, timestamp=at, employee_id=employee_id, trigger_event_id=trigger)

    def refuse_pin(self, employee_id: str, trigger: str, at: datetime) -> None:
        self.trigger_event(
            self.PinRefused, timestamp=at, employee_id=employee_id, reason=PIN_TO_DEPARTED,
            trigger_event_id=trigger,
        )

    def unpin(self, trigger: str, at: datetime) -> None:
        self.trigger_event(self.Unpinned, timestamp=at, trigger_event_id=trigger)

    def churn(self, trigger: str, at: datetime) -> None:
        self.trigger_event(self.Churned, timestamp=at, trigger_event_id=trigger)


OWNER_EVENTS = (Relationship.OwnerAssigned, Relationship.OwnerChanged)


def describe(event: Any) -> dict[str, Any]:
    """The payload of a ledger event as plain values (for sinks and topics)."""
    return {
        name: value
        for name, value in event.__dict__.items()
        if name not in ("originator_id", "originator_version", "timestamp", "originator_topic")
    }
