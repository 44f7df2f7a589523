"""Narrated scenarios for the pure core: build events, feed them, read what was decided."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import orjson

from ledger.core import LedgerCore
from ledger.policy import DEFAULT_POLICY, Policy
from ledger.records import LedgerRecord, Position, TouchFact
from ledger.relationship import OWNER_EVENTS
from schemas import Rejection, decode

T0 = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)


def day(n: float, hours: float = 0.0) -> datetime:
    return T0 + timedelta(days=n, hours=hours)


class Scenario:
    """Feeds events to a fresh core, one after another, as a file or a partition would."""

    def __init__(self, policy: Policy = DEFAULT_POLICY) -> None:
        self.core = LedgerCore(policy)
        self._ids = count(1)
        self.touches: list[TouchFact] = []
        self.records: list[LedgerRecord] = []

    def send(self, **fields: Any) -> str:
        fields.setdefault("event_id", f"ev-{next(self._ids)}")
        at = fields.pop("at")
        fields["occurred_at"] = at.isoformat()
        event = decode(orjson.dumps(fields))
        assert not isinstance(event, Rejection), event
        seq = next(self._ids)
        self.core.process(event, Position("scenario", seq, seq))
        self.touches += self.core.touch_facts
        self.records += self.core.ledger_records
        self.core.touch_facts, self.core.ledger_records = [], []
        return fields["event_id"]

    def touch(
        self, at: datetime, employee: str | None, *, customer: str = "c1", department: str = "support",
        direction: str = "inbound", channel: str = "phone", **fields: Any,
    ) -> str:
        return self.send(
            at=at, customer_id=customer, employee_id=employee, department=department,
            direction=direction, channel=channel, **fields,
        )

    def resolved(self, at: datetime, employee: str | None, **fields: Any) -> str:
        return self.touch(at, employee, outcome="resolved", **fields)

    def depart(self, at: datetime, employee: str) -> str:
        return self.send(type="employee_departed", at=at, employee_id=employee)

    def pin(self, at: datetime, employee: str, customer: str = "c1") -> str:
        return self.send(type="owner_pinned", at=at, customer_id=customer, employee_id=employee)

    def unpin(self, at: datetime, customer: str = "c1") -> str:
        return self.send(type="owner_unpinned", at=at, customer_id=customer)

    # What was decided.

    def owner(self, customer: str = "c1") -> str | None:
        state = self.core.customer(customer)
        return state.relationship.owner_id if state else None

    def pinned(self, customer: str = "c1") -> bool:
        state = self.core.customer(customer)
        return bool(state and state.relationship.pinned)

    def owner_changes(self, customer: str = "c1") -> list[Any]:
        return [r.event for r in self.records if r.customer_id == customer and isinstance(r.event, OWNER_EVENTS)]

    def ledger_types(self, customer: str = "c1") -> list[str]:
        return [type(r.event).__name__ for r in self.records if r.customer_id == customer]

    def fact(self, event_id: str) -> TouchFact:
        return next(f for f in self.touches if f.touch.event_id == event_id)
