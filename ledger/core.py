"""The ledger core: validated input events in, facts and ledger decisions out. No I/O.

Every driver (``spoc replay``, the faust worker, the tests) feeds events through
:meth:`LedgerCore.process` in arrival order and drains the facts it produced, so
batch and live results agree by construction.

What it produces is in :mod:`ledger.records`; who owns a customer (SPEC §3) is
decided in :mod:`ledger.ownership`.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping
from datetime import datetime
from sys import intern

from ledger.affinity import Affinity, touch_weight
from ledger.followups import FollowUpBook, FollowUpRules
from ledger.journeys import JourneyBook
from ledger.ownership import OwnerRules
from ledger.policy import DEFAULT_POLICY, Policy
from ledger.records import Erasure, LedgerRecord, Position, TouchFact
from ledger.relationship import OWNER_EVENTS, Relationship
from ledger.repeats import RepeatIndex
from ledger.routing import Availability, Route, Standing, route
from schemas.events import (
    CustomerChurned,
    CustomerErased,
    EmployeeAway,
    EmployeeDeparted,
    EmployeeReturned,
    InputEvent,
    OwnerPinned,
    OwnerUnpinned,
    Touchpoint,
)


class Customer:
    """A customer's relationship (the ledger) and the working memory behind its decisions."""

    __slots__ = (
        "affinities", "challenger", "challenger_known", "follow_ups", "journeys", "latest_event", "latest_handled",
        "latest_touch", "relationship", "repeats",
    )

    def __init__(self, relationship: Relationship) -> None:
        self.relationship = relationship
        self.affinities: dict[str, Affinity] = {}
        self.journeys = JourneyBook()
        self.repeats = RepeatIndex()
        self.latest_touch = float("-inf")
        self.latest_event = float("-inf")
        """The time of the customer's latest event (SPEC §9: the route's default moment)."""
        self.latest_handled: tuple[float, str] | None = None
        """The time and department of the customer's latest touch with an employee (§9)."""
        # The best active non-owner, cached between touches: affinities all decay
        # by the same factor, so their order only changes when a touch lands.
        self.challenger: str | None = None
        self.challenger_known = False
        self.follow_ups: FollowUpBook | None = None
        """Created when the customer first gets an owner (SPEC §8)."""


class LedgerCore:
    """Applies SPEC §3–§5 and §8 (follow-ups) to a stream of validated events."""

    def __init__(
        self, policy: Policy = DEFAULT_POLICY, customers: MutableMapping[str, Customer] | None = None,
        *, announce_follow_ups: bool = False,
    ) -> None:
        """``customers`` keeps the per-customer state (a dict by default; a driver may give one that keeps
        some of it on disk).  The core holds a customer it got from it only while handling one event.
        ``announce_follow_ups``: say when the stream's time passes a follow-up's due time (live)."""
        self.policy = policy
        self.customers: MutableMapping[str, Customer] = {} if customers is None else customers
        self.departed: set[str] = set()
        self.departed_at: dict[str, float] = {}
        """When each departed employee left (the earliest departure of theirs)."""
        self.availability = Availability()
        self.latest_broadcast = -math.inf
        """The time of the latest departure or absence: every customer's event too (SPEC §9)."""
        """Who is away when (SPEC §9): routing passes them by; ownership is unchanged."""
        self.owned_by: dict[str, set[str]] = {}
        self.touch_facts: list[TouchFact] = []
        self.ledger_records: list[LedgerRecord] = []
        self.erasures: list[Erasure] = []
        self.rules = OwnerRules(policy, self.departed)
        self.follow_ups = FollowUpRules(policy, self._book_of, announce=announce_follow_ups)
        self._announcing = announce_follow_ups
        self._half_life = policy.half_life_seconds
        self._horizon = policy.late_event_horizon_seconds

    # Driving the core.

    def process(self, event: InputEvent, position: Position) -> None:
        at = event.occurred_at
        t = at.timestamp()
        if self._announcing:
            self.follow_ups.advance(t, at, position)
        if type(event) is Touchpoint:
            self._touch(event, t, position)
            return
        if isinstance(event, (EmployeeDeparted, EmployeeAway, EmployeeReturned)):
            self.latest_broadcast = max(self.latest_broadcast, t)
        if isinstance(event, EmployeeDeparted):
            self._departure(event.employee_id, event.event_id, at, position)
        elif isinstance(event, EmployeeAway):
            self.availability.away(event.employee_id, t, None if event.until is None else event.until.timestamp())
        elif isinstance(event, EmployeeReturned):
            self.availability.returned(event.employee_id, t)
        elif isinstance(event, CustomerErased):
            self._erase(event.customer_id, position)
        else:
            customer = self._customer(event.customer_id, event.event_id, at)
            relationship = customer.relationship
            self.follow_ups.come_due(relationship.customer_id, customer.follow_ups, t, position)
            decided = len(relationship.pending_events)
            if isinstance(event, OwnerPinned):
                self.rules.pin(relationship, event.employee_id, event.event_id, at)
            elif isinstance(event, OwnerUnpinned):
                self.rules.unpin(relationship, event.event_id, at)
            elif isinstance(event, CustomerChurned):
                relationship.churn(event.event_id, at)
            self.rules.apply(customer, t, at, event.event_id, None)
            if isinstance(event, CustomerChurned):
                if customer.follow_ups is not None:
                    self.follow_ups.churned(relationship.customer_id, customer.follow_ups, event.event_id, at, position)
            else:
                self._follow_owner_change(customer, decided, event.event_id, at, position)
            self._record(customer, position)

    def customer(self, customer_id: str) -> Customer | None:
        return self.customers.get(customer_id)

    def route_of(self, customer_id: str) -> Route | None:
        """SPEC §9's route at the customer's latest event, a broadcast's included (None: an unknown or
        erased customer)."""
        customer = self.customers.get(customer_id)
        if customer is None:
            return None
        t, half_life = max(customer.latest_event, self.latest_broadcast), self._half_life
        affinities = dict(customer.affinities)  # one step: a reader on another thread sees no resize
        standings = {
            employee: Standing(affinity.at(t, half_life), affinity.last_touch_at_or_before(t))
            for employee, affinity in affinities.items()
        }
        departed_at, availability = self.departed_at, self.availability
        handled = customer.latest_handled

        def department_of(employee: str | None) -> str | None:
            if employee is None:
                return handled[1] if handled is not None else None
            affinity = affinities.get(employee)
            return affinity.department if affinity is not None else None

        return route(
            customer.relationship.owner_id, standings,
            lambda e: departed_at.get(e, math.inf) <= t or availability.is_away(e, t), department_of,
        )

    # Event handlers.

    def _touch(self, touch: Touchpoint, t: float, position: Position) -> None:
        at = touch.occurred_at
        policy = self.policy
        customer = self._customer(touch.customer_id, touch.event_id, at)
        relationship = customer.relationship
        book = customer.follow_ups
        if book is not None and book.pending:
            self.follow_ups.come_due(touch.customer_id, book, t, position)
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
            if t >= affinity.anchor:  # the latest touch with them by time; ties: the later arrival
                affinity.department = intern(touch.department)
            if customer.latest_handled is None or t >= customer.latest_handled[0]:
                customer.latest_handled = (t, intern(touch.department))
            affinity.add(t, weight, self._half_life, self._horizon)
            self.rules.note_touch(customer, employee_id, weight, t)
        if book is not None:
            self.follow_ups.touch(
                touch.customer_id, book, touch, owner_before, placement.journey_id, placement.handoff, position,
            )
        decided = len(relationship.pending_events)
        self.rules.apply(customer, t, at, touch.event_id, touch)
        if relationship.pending_events:
            self._follow_owner_change(customer, decided, touch.event_id, at, position)
            self._record(customer, position)
        self.touch_facts.append(
            TouchFact(
                touch, position, placement.journey_id, placement.key, weight,
                owner_before, owner_match, repeat, placement.handoff, relationship.owner_id,
            )
        )

    def _departure(self, employee_id: str, trigger: str, at: datetime, position: Position) -> None:
        """Rule 3: each customer the employee owns gets the best active successor, or none."""
        self.departed.add(employee_id)
        t = at.timestamp()
        self.departed_at[employee_id] = min(t, self.departed_at.get(employee_id, t))
        for customer_id in sorted(self.owned_by.get(employee_id, ())):
            customer = self.customers[customer_id]
            self.follow_ups.come_due(customer_id, customer.follow_ups, t, position)
            decided = len(customer.relationship.pending_events)
            self.rules.hand_over(customer, employee_id, trigger, at)
            self._follow_owner_change(customer, decided, trigger, at, position)
            self._record(customer, position)

    def _erase(self, customer_id: str, position: Position) -> None:
        """Rule 5: forget the customer; sinks and the ledger store delete what they hold."""
        customer = self.customers.pop(customer_id, None)
        relationship_id = None
        if customer is not None:
            relationship = customer.relationship
            relationship_id = relationship.id
            self.follow_ups.forget(customer.follow_ups)
            if relationship.owner_id is not None:
                self.owned_by[relationship.owner_id].discard(customer_id)
            self.ledger_records[:] = [r for r in self.ledger_records if r.customer_id != customer_id]
            announced = self.follow_ups.announcements
            if announced:
                announced[:] = [a for a in announced if a.customer_id != customer_id]
        self.erasures.append(Erasure(customer_id, relationship_id, position))

    # Helpers.

    def _book_of(self, customer_id: str) -> FollowUpBook | None:
        customer = self.customers.get(customer_id)
        return None if customer is None else customer.follow_ups

    def _follow_owner_change(self, customer: Customer, decided: int, trigger: str, at: datetime, position: Position) -> None:
        """§8 step 3: the owner changed in this event (decisions past the first ``decided`` pending ones)."""
        relationship = customer.relationship
        if not any(isinstance(event, OWNER_EVENTS) for event in relationship.pending_events[decided:]):
            return
        book = customer.follow_ups
        if book is None:
            book = customer.follow_ups = FollowUpBook()
        self.follow_ups.owner_changed(relationship.customer_id, book, relationship.owner_id, trigger, at, position)

    def _customer(self, customer_id: str, event_id: str, at: datetime) -> Customer:
        customer = self.customers.get(customer_id)
        if customer is None:
            relationship = Relationship.open(customer_id, event_id, at)
            customer = self.customers[customer_id] = Customer(relationship)
        t = at.timestamp()
        if t > customer.latest_event:
            customer.latest_event = t
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
