"""The ledger core: validated input events in, facts and ledger decisions out. No I/O.

Every driver (``spoc replay``, the faust worker, the tests) feeds events through
:meth:`LedgerCore.process` in arrival order and drains the facts it produced, so
batch and live results agree by construction.

The records made for every event (positions, facts, placements, candidates) are
slotted dataclasses that are immutable by convention, not ``frozen``: a frozen
dataclass sets each field through ``object.__setattr__``, several times slower to
build, and the core builds several per event (docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from sys import intern
from typing import Any
from uuid import UUID

from ledger.affinity import Affinity, is_productive, touch_weight
from ledger.journeys import Handoff, JourneyBook
from ledger.owner_policy import (
    Candidate,
    best_candidate,
    challenger_wins,
    ranks_above,
    stability_gap_passed,
)
from ledger.policy import DEFAULT_POLICY, Policy
from ledger.relationship import (
    AFFINITY,
    FIRST_PRODUCTIVE_CONTACT,
    OWNER_DEPARTED,
    OWNER_DEPARTED_UNASSIGNED,
    OWNER_EVENTS,
    Relationship,
)
from ledger.repeats import Repeat, RepeatIndex
from schemas.events import (
    CustomerChurned,
    CustomerErased,
    EmployeeDeparted,
    InputEvent,
    OwnerPinned,
    OwnerUnpinned,
    Touchpoint,
)


@dataclass(slots=True)
class Position:
    """Where an input event came from: ``file:line`` or ``topic:partition`` and offset.

    ``seq`` orders events; it only has to increase along each customer's stream.
    """

    source: str
    offset: int
    seq: int


@dataclass(slots=True)
class TouchFact:
    touch: Touchpoint
    position: Position
    journey_id: str
    journey_key: str
    weight: float | None
    owner_before: str | None
    owner_match: bool | None
    """Handled by the owner in place just before the touch; None when not counted for continuity."""
    repeat: Repeat | None
    handoff: Handoff | None


@dataclass(frozen=True, slots=True)
class ControlFact:
    event: InputEvent
    position: Position


@dataclass(slots=True)
class LedgerRecord:
    customer_id: str
    event: Any
    """A :class:`~ledger.relationship.Relationship` domain event."""
    position: Position


@dataclass(frozen=True, slots=True)
class Erasure:
    customer_id: str
    relationship_id: UUID | None
    position: Position


class Customer:
    """A customer's relationship (the ledger) and the working memory behind its decisions."""

    __slots__ = ("affinities", "challenger", "challenger_known", "journeys", "latest_touch", "relationship", "repeats")

    def __init__(self, relationship: Relationship) -> None:
        self.relationship = relationship
        self.affinities: dict[str, Affinity] = {}
        self.journeys = JourneyBook()
        self.repeats = RepeatIndex()
        self.latest_touch = float("-inf")
        # The best active non-owner, cached between touches: affinities all decay
        # by the same factor, so their order only changes when a touch lands.
        self.challenger: str | None = None
        self.challenger_known = False


class LedgerCore:
    """Applies SPEC §3–§5 to a stream of validated events."""

    def __init__(self, policy: Policy = DEFAULT_POLICY) -> None:
        self.policy = policy
        self.customers: dict[str, Customer] = {}
        self.departed: set[str] = set()
        self.owned_by: dict[str, set[str]] = {}
        self.touch_facts: list[TouchFact] = []
        self.ledger_records: list[LedgerRecord] = []
        self.erasures: list[Erasure] = []
        self._half_life = policy.half_life_seconds
        self._horizon = policy.late_event_horizon_seconds

    # Driving the core.

    def process(self, event: InputEvent, position: Position) -> None:
        if type(event) is Touchpoint:
            self._touch(event, position)
            return
        at = event.occurred_at
        if isinstance(event, EmployeeDeparted):
            self._departure(event.employee_id, event.event_id, at, position)
        elif isinstance(event, CustomerErased):
            self._erase(event.customer_id, position)
        else:
            customer = self._customer(event.customer_id, event.event_id, at)
            relationship = customer.relationship
            if isinstance(event, OwnerPinned):
                if event.employee_id in self.departed:
                    relationship.refuse_pin(event.employee_id, event.event_id, at)
                else:
                    relationship.pin(event.employee_id, event.event_id, at)
            elif isinstance(event, OwnerUnpinned):
                if relationship.pinned:
                    relationship.unpin(event.event_id, at)
            elif isinstance(event, CustomerChurned):
                relationship.churn(event.event_id, at)
            self._apply_owner_rules(customer, at.timestamp(), at, event.event_id, None)
            self._record(customer, position)

    def customer(self, customer_id: str) -> Customer | None:
        return self.customers.get(customer_id)

    # Event handlers.

    def _touch(self, touch: Touchpoint, position: Position) -> None:
        at = touch.occurred_at
        t = at.timestamp()
        policy = self.policy
        customer = self._customer(touch.customer_id, touch.event_id, at)
        relationship = customer.relationship
        employee_id = touch.employee_id
        owner_before = relationship.owner_id
        owner_match = employee_id == owner_before if employee_id is not None and relationship.ever_owned else None
        placement = customer.journeys.place(touch, t, policy.journey_window_seconds)
        # The receiving leg of a transfer is part of the same contact, not a repeat.
        may_repeat = touch.direction == "inbound" and placement.previous_outcome != "transferred"
        repeat = customer.repeats.observe(
            placement.key, t, touch.event_id, may_repeat=may_repeat, window_seconds=policy.repeat_window_seconds,
            horizon_seconds=self._horizon,
        )
        weight = None
        if employee_id is not None:
            weight = touch_weight(touch)
            affinity = customer.affinities.get(employee_id)
            if affinity is None:
                affinity = customer.affinities[intern(employee_id)] = Affinity()
            affinity.add(t, weight, self._half_life, self._horizon)
            self._update_challenger(customer, employee_id, weight, t)
        self._apply_owner_rules(customer, t, at, touch.event_id, touch)
        if relationship.pending_events:
            self._record(customer, position)
        self.touch_facts.append(
            TouchFact(
                touch, position, placement.journey_id, placement.key, weight,
                owner_before, owner_match, repeat, placement.handoff,
            )
        )

    def _apply_owner_rules(
        self, customer: Customer, t: float, at: datetime, trigger: str, touch: Touchpoint | None
    ) -> None:
        """Rules 1 and 2, evaluated after each of the customer's events; a pin suspends both."""
        relationship = customer.relationship
        if relationship.pinned:
            return
        owner_id = relationship.owner_id
        if owner_id is None:
            # Rule 1: the first productive touch (with an active employee) assigns.
            if (
                touch is not None
                and touch.employee_id is not None
                and touch.employee_id not in self.departed
                and is_productive(touch)
            ):
                employee_id = touch.employee_id
                affinity = customer.affinities[employee_id].at(t, self._half_life)
                relationship.assign(employee_id, FIRST_PRODUCTIVE_CONTACT, {employee_id: affinity}, trigger, at)
            return
        # Rule 2: a challenger replaces the owner only by a clear margin, and not too soon.
        assert relationship.owner_since is not None  # set with every owner
        if not stability_gap_passed(t, relationship.owner_since.timestamp(), self.policy):
            return
        challenger = self._challenger(customer, t)
        if challenger is None:
            return
        owner_affinity = customer.affinities[owner_id].at(t, self._half_life) if owner_id in customer.affinities else 0.0
        if challenger_wins(challenger.affinity, owner_affinity, self.policy):
            relationship.assign(
                challenger.employee_id,
                AFFINITY,
                {challenger.employee_id: challenger.affinity, owner_id: owner_affinity},
                trigger,
                at,
            )

    def _challenger(self, customer: Customer, t: float) -> Candidate | None:
        """Rule 2's challenger: the active non-owner with the highest affinity at ``t``."""
        cached = customer.challenger
        if customer.challenger_known and t >= customer.latest_touch and cached not in self.departed:
            if cached is None:
                return None
            affinity = customer.affinities[cached]
            return Candidate(cached, affinity.at(t, self._half_life), affinity.last_touch)
        best = best_candidate(
            customer.affinities, t, self._half_life, exclude=customer.relationship.owner_id, departed=self.departed
        )
        if t >= customer.latest_touch:
            customer.challenger = best.employee_id if best is not None else None
            customer.challenger_known = True
        return best

    def _update_challenger(self, customer: Customer, employee_id: str, weight: float, t: float) -> None:
        """Keep the cached challenger right after a touch by ``employee_id``."""
        in_order = t >= customer.latest_touch
        if in_order:
            customer.latest_touch = t
        if not customer.challenger_known:
            return
        if not in_order:
            customer.challenger_known = False
            return
        if employee_id == customer.relationship.owner_id or employee_id in self.departed:
            return
        cached = customer.challenger
        if cached is None:
            customer.challenger = employee_id
        elif cached == employee_id:
            # A negative weight may drop the leader below another employee.
            customer.challenger_known = weight >= 0.0
        else:
            # Only this employee changed, so the leader is the better of the two: one that fell
            # stays below, but a first touch may be negative and still rank above a leader below zero.
            leader = customer.affinities[cached]
            toucher = Candidate(employee_id, customer.affinities[employee_id].value, t)
            if ranks_above(toucher, Candidate(cached, leader.at(t, self._half_life), leader.last_touch)):
                customer.challenger = employee_id

    def _departure(self, employee_id: str, trigger: str, at: datetime, position: Position) -> None:
        """Rule 3: each customer the employee owns gets the best active successor, or none."""
        self.departed.add(employee_id)
        t = at.timestamp()
        for customer_id in sorted(self.owned_by.get(employee_id, ())):
            customer = self.customers[customer_id]
            successor = best_candidate(
                customer.affinities, t, self._half_life, exclude=employee_id, departed=self.departed
            )
            if successor is not None and successor.affinity > 0.0:
                customer.relationship.assign(
                    successor.employee_id, OWNER_DEPARTED, {successor.employee_id: successor.affinity}, trigger, at
                )
            else:
                customer.relationship.assign(None, OWNER_DEPARTED_UNASSIGNED, {}, trigger, at)
            self._record(customer, position)

    def _erase(self, customer_id: str, position: Position) -> None:
        """Rule 5: forget the customer; sinks and the ledger store delete what they hold."""
        customer = self.customers.pop(customer_id, None)
        relationship_id = None
        if customer is not None:
            relationship = customer.relationship
            relationship_id = relationship.id
            if relationship.owner_id is not None:
                self.owned_by[relationship.owner_id].discard(customer_id)
            self.ledger_records[:] = [r for r in self.ledger_records if r.customer_id != customer_id]
        self.erasures.append(Erasure(customer_id, relationship_id, position))

    # Helpers.

    def _customer(self, customer_id: str, event_id: str, at: datetime) -> Customer:
        customer = self.customers.get(customer_id)
        if customer is None:
            relationship = Relationship.open(customer_id, event_id, at)
            customer = self.customers[customer_id] = Customer(relationship)
        return customer

    def _record(self, customer: Customer, position: Position) -> None:
        """Move the aggregate's new decisions to the ledger output and the owner index."""
        customer_id = customer.relationship.customer_id
        for event in customer.relationship.collect_events():
            if isinstance(event, OWNER_EVENTS):
                customer.challenger_known = False
                previous = getattr(event, "previous_owner_id", None)
                if previous is not None:
                    self.owned_by[previous].discard(customer_id)
                if event.owner_id is not None:
                    self.owned_by.setdefault(event.owner_id, set()).add(customer_id)
            self.ledger_records.append(LedgerRecord(customer_id, event, position))
