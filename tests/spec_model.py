"""SPEC §3-§8 read plainly, to test the ledger core and the analysts' views against.

No caches, no running values: every affinity is the SPEC's sum over the touches
that arrived so far, every challenger or successor ranks every employee, journeys,
handoffs and repeats scan the customer's earlier arrivals, and the §7 rows are
counted from the customers' histories.  Slow and obvious on purpose; where the SPEC
leaves room it follows docs/ledger.md.

Floating point: the SPEC's sums are exact; the core keeps running values and this
model sums afresh, so equal affinities can differ in their last bits between the two
(or within one).  Both count affinities within one part in 10^9 as equal
(docs/ledger.md).  The model marks a history ``ambiguous`` when a decision turned on
a difference close to that line, or on a sum that only just is or is not positive,
and a test compares nothing from there on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID, uuid5

from ledger.policy import DEFAULT_POLICY, Policy
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

TIE = 1e-9
"""Affinities closer than this, relative to the larger, are equal (docs/ledger.md)."""
NEAR_TIE = (1e-11, 1e-7)
"""Relative differences this close to ``TIE`` make a history ambiguous."""
ZERO = 1e-12
"""A sum this close to zero only just is, or is not, positive (rule 3's successor must be)."""


@dataclass
class Touch:
    event_id: str
    t: float
    employee: str | None
    weight: float | None
    key: str
    journey_id: str
    outcome: str | None
    department: str
    context_passed: bool = False


@dataclass
class Customer:
    touches: list[Touch] = field(default_factory=list)
    owner: str | None = None
    since: float | None = None
    ever_owned: bool = False
    pinned: bool = False
    seen: list[float] = field(default_factory=list)
    """Times of the customer's accepted events (§7 first_seen, last_seen)."""
    churned_at: float | None = None
    owner_periods: list[tuple[str | None, float, str, str]] = field(default_factory=list)
    """Each owner change: owner, from, reason, triggering event_id."""


LEDGER_NAMESPACE = UUID("6f0e5d0c-3b1c-4d5e-9a8f-5c0c1e2d3a4b")
"""docs/ledger.md: follow_up_id = UUID v5 in this namespace of ``customer NUL kind NUL anchor event id``."""


@dataclass
class FollowUpRow:
    """A follow-up of §8 as it stands: ``pending``, ``open``, ``done``, ``dropped`` or ``cancelled``."""

    customer_id: str
    owner: str
    kind: str
    anchor: str
    journey_id: str | None
    due: float
    status: str = "pending"
    closed_at: float | None = None
    closed_by: str | None = None


@dataclass
class Decision:
    customer_id: str
    kind: str  # OwnerAssigned or OwnerChanged
    previous_owner_id: str | None
    owner_id: str | None
    reason: str
    affinities: dict[str, float]
    trigger_event_id: str


@dataclass
class TouchOutcome:
    journey_id: str
    journey_key: str
    weight: float | None
    owner_before: str | None
    owner_match: bool | None
    repeat: tuple[str, float] | None
    handoff: dict[str, object] | None


def productive(touch: Touchpoint) -> bool:
    return touch.outcome == "resolved" or touch.kind == "purchase" or (touch.csat is not None and touch.csat >= 4)


def weight(touch: Touchpoint) -> float:
    w = 1.0 if productive(touch) else 0.0 if touch.outcome in ("transferred", "redirected", "abandoned") else 0.2
    return w - 0.5 if touch.csat is not None and touch.csat <= 2 else w


class SpecModel:
    def __init__(self, policy: Policy = DEFAULT_POLICY) -> None:
        self.policy = policy
        self.customers: dict[str, Customer] = {}
        self.departed: set[str] = set()
        self.decisions: list[Decision] = []
        self.touches: dict[str, TouchOutcome] = {}
        self.ambiguous = False
        self.latest: float | None = None
        self.follow_ups: dict[str, FollowUpRow] = {}
        """By follow_up_id."""

    def process(self, event: InputEvent) -> None:
        t = event.occurred_at.timestamp()
        self.latest = t if self.latest is None else max(self.latest, t)
        if isinstance(event, EmployeeDeparted):
            self._departure(event.employee_id, event.event_id, t)
            return
        if isinstance(event, (EmployeeAway, EmployeeReturned)):
            return  # availability changes routing only (§9), never ownership or follow-ups
        if isinstance(event, CustomerErased):
            self.customers.pop(event.customer_id, None)
            self.follow_ups = {k: f for k, f in self.follow_ups.items() if f.customer_id != event.customer_id}
            return
        customer = self.customers.setdefault(event.customer_id, Customer())
        customer.seen.append(t)
        self._come_due(event.customer_id, t)
        decided = len(customer.owner_periods)
        if isinstance(event, Touchpoint):
            self._touch(event.customer_id, customer, event, t)
            self._after_owner_change(event.customer_id, customer, decided, event.event_id, t)
            return
        if isinstance(event, OwnerPinned):
            if event.employee_id not in self.departed:
                if event.employee_id != customer.owner:
                    self._assign(event.customer_id, customer, event.employee_id, "pinned", {}, event.event_id, t)
                customer.pinned = True
        elif isinstance(event, OwnerUnpinned):
            customer.pinned = False
        else:
            assert isinstance(event, CustomerChurned)
            customer.churned_at = t  # the last to arrive
        self._rules(event.customer_id, customer, t, event.event_id, None)
        if isinstance(event, CustomerChurned):
            self._end_all(event.customer_id, "dropped", t, event.event_id)
        else:
            self._after_owner_change(event.customer_id, customer, decided, event.event_id, t)

    # §3

    def affinity(self, customer: Customer, employee: str, t: float) -> float:
        half_life = self.policy.half_life_seconds
        return sum(
            x.weight * 2 ** (-(t - x.t) / half_life)
            for x in customer.touches
            if x.employee == employee and x.weight is not None and x.t <= t
        )

    def _history(self, customer: Customer, employee: str, t: float) -> list[tuple[float, float | None]]:
        return [(x.t, x.weight) for x in customer.touches if x.employee == employee and x.t <= t]

    def best(self, customer: Customer, t: float, exclude: str | None) -> tuple[str, float] | None:
        """The active employee with the highest affinity; ties: most recent touch, then lowest id."""
        best: tuple[float, float, str] | None = None
        for employee in sorted({x.employee for x in customer.touches if x.employee is not None and x.t <= t}):
            if employee != exclude and employee not in self.departed:
                last = max(x.t for x in customer.touches if x.employee == employee and x.t <= t)
                candidate = (self.affinity(customer, employee, t), last, employee)
                if best is None or self._ranks_above(candidate, best):
                    best = candidate
        return (best[2], best[0]) if best is not None else None

    def _ranks_above(self, a: tuple[float, float, str], b: tuple[float, float, str]) -> bool:
        if not self._equal(a[0], b[0]):
            return a[0] > b[0]
        return a[1] > b[1] if a[1] != b[1] else a[2] < b[2]

    def _equal(self, a: float, b: float) -> bool:
        difference = abs(a - b) / max(abs(a), abs(b), 1e-300)
        if NEAR_TIE[0] < difference < NEAR_TIE[1]:
            self.ambiguous = True
        return difference <= TIE

    def _at_least(self, a: float, b: float) -> bool:
        return self._equal(a, b) or a > b

    def _touch(self, customer_id: str, customer: Customer, touch: Touchpoint, t: float) -> None:
        if touch.case_id is not None:
            key = f"case:{touch.case_id}"
        else:
            key = f"topic:{touch.topic if touch.topic is not None else 'general'}"
        previous = self._journey_predecessor(customer, touch, key, t)
        journey_id = previous.journey_id if previous is not None else touch.event_id
        w = weight(touch) if touch.employee_id is not None else None
        owner_before = customer.owner
        match = None if touch.employee_id is None or not customer.ever_owned else touch.employee_id == owner_before
        outcome = TouchOutcome(
            journey_id, key, w, owner_before, match,
            self._repeat(customer, touch, key, t, previous), self._handoff(customer, touch, t, previous),
        )
        customer.touches.append(
            Touch(
                touch.event_id, t, touch.employee_id, w, key, journey_id, touch.outcome, touch.department,
                touch.context_passed is True,
            )
        )
        self.touches[touch.event_id] = outcome
        if owner_before is not None:
            self._owner_touch_or_trigger(customer_id, owner_before, touch, t, journey_id, outcome.handoff)
        self._rules(customer_id, customer, t, touch.event_id, touch)

    def _rules(self, customer_id: str, customer: Customer, t: float, trigger: str, touch: Touchpoint | None) -> None:
        if customer.pinned:
            return
        if customer.owner is None:
            employee = touch.employee_id if touch is not None else None
            if touch is not None and employee is not None and employee not in self.departed and productive(touch):
                a = self.affinity(customer, employee, t)
                self._assign(customer_id, customer, employee, "first_productive_contact", {employee: a}, trigger, t)
            return
        assert customer.since is not None
        if t - customer.since < self.policy.min_seconds_between_changes:
            return
        best = self.best(customer, t, exclude=customer.owner)
        if best is None:
            return
        owner_affinity = self.affinity(customer, customer.owner, t)
        bar = max(self.policy.stability_ratio * owner_affinity, owner_affinity + self.policy.stability_margin)
        if self._at_least(best[1], bar):
            self._assign(
                customer_id, customer, best[0], "affinity", {best[0]: best[1], customer.owner: owner_affinity},
                trigger, t,
            )

    def _departure(self, employee: str, trigger: str, t: float) -> None:
        self.departed.add(employee)
        for customer_id in sorted(c for c, s in self.customers.items() if s.owner == employee):
            customer = self.customers[customer_id]
            self._come_due(customer_id, t)
            decided = len(customer.owner_periods)
            best = self.best(customer, t, exclude=employee)
            if best is not None and abs(best[1]) <= ZERO and any(w for _, w in self._history(customer, best[0], t)):
                self.ambiguous = True  # a sum that only just fails (or passes) "positive"
            if best is not None and best[1] > 0.0:
                self._assign(customer_id, customer, best[0], "owner_departed", {best[0]: best[1]}, trigger, t)
            else:
                self._assign(customer_id, customer, None, "owner_departed_unassigned", {}, trigger, t)
            customer.pinned = False  # a departure ends a pin
            self._after_owner_change(customer_id, customer, decided, trigger, t)

    def _assign(
        self, customer_id: str, customer: Customer, owner: str | None, reason: str,
        affinities: dict[str, float], trigger: str, t: float,
    ) -> None:
        kind = "OwnerAssigned" if not customer.ever_owned and owner is not None else "OwnerChanged"
        previous = None if kind == "OwnerAssigned" else customer.owner
        self.decisions.append(Decision(customer_id, kind, previous, owner, reason, affinities, trigger))
        customer.owner_periods.append((owner, t, reason, trigger))
        customer.owner, customer.since = owner, t
        customer.ever_owned = customer.ever_owned or owner is not None

    # §4

    def _journey_predecessor(self, customer: Customer, touch: Touchpoint, key: str, t: float) -> Touch | None:
        """The touch this one follows in its journey, or None when it opens a journey."""
        same_key = [x for x in customer.touches if x.key == key]
        if not same_key:
            return None
        last = same_key[-1]  # cases: one journey per key; topics: the open one is the latest's
        if touch.case_id is not None:
            return last
        if last.outcome == "resolved" or t - last.t > self.policy.journey_window_seconds:
            return None
        return last

    def _handoff(self, customer: Customer, touch: Touchpoint, t: float, previous: Touch | None) -> dict[str, object] | None:
        if previous is None:
            return None
        employee_changed = previous.employee != touch.employee_id
        cross = previous.department != touch.department
        if not (employee_changed or cross):
            return None
        earlier = {x.department for x in customer.touches if x.journey_id == previous.journey_id}
        kind = {"transferred": "transfer", "redirected": "redirect"}.get(previous.outcome or "", "bounce")
        return {
            "journey_id": previous.journey_id, "from_event_id": previous.event_id, "to_event_id": touch.event_id,
            "from_department": previous.department, "to_department": touch.department,
            "from_employee_id": previous.employee, "to_employee_id": touch.employee_id, "kind": kind,
            "cross_department": cross,
            "reexplained": employee_changed and not (previous.outcome == "transferred" and previous.context_passed),
            "ping_pong": cross and touch.department in earlier, "gap_seconds": t - previous.t,
        }

    # §5

    def _repeat(
        self, customer: Customer, touch: Touchpoint, key: str, t: float, previous: Touch | None
    ) -> tuple[str, float] | None:
        if touch.direction != "inbound" or (previous is not None and previous.outcome == "transferred"):
            return None
        found = None
        for x in customer.touches:  # arrival order: on equal times the later arrival wins
            if x.key == key and 0 <= t - x.t <= self.policy.repeat_window_seconds and (found is None or x.t >= found.t):
                found = x
        return (found.event_id, t - found.t) if found is not None else None


    # §8

    def _come_due(self, customer_id: str, t: float) -> None:
        for f in self.follow_ups.values():
            if f.customer_id == customer_id and f.status == "pending" and f.due < t:
                f.status = "open"

    def _end_all(self, customer_id: str, closed_as: str, t: float, event_id: str) -> None:
        for f in self.follow_ups.values():
            if f.customer_id == customer_id and f.status in ("pending", "open"):
                f.status = "cancelled" if f.status == "pending" else closed_as
                f.closed_at, f.closed_by = t, event_id

    def _open_follow_up(self, customer_id: str, owner: str, kind: str, anchor: str, journey: str | None, due: float) -> None:
        key = str(uuid5(LEDGER_NAMESPACE, f"{customer_id}\x00{kind}\x00{anchor}"))
        self.follow_ups[key] = FollowUpRow(customer_id, owner, kind, anchor, journey, due)

    def _owner_touch_or_trigger(
        self, customer_id: str, owner: str, touch: Touchpoint, t: float, journey_id: str, handoff: dict[str, object] | None,
    ) -> None:
        if touch.employee_id == owner:
            self._end_all(customer_id, "done", t, touch.event_id)
            self._open_follow_up(customer_id, owner, "check_in", touch.event_id, None, t + self.policy.check_in_days * 86400)
            return
        troubled = (
            (handoff is not None and bool(handoff["cross_department"]))
            or (touch.csat is not None and touch.csat <= 2)
            or touch.outcome in ("redirected", "abandoned")
            or touch.kind == "complaint"
        )
        pending = any(
            f.customer_id == customer_id and f.kind == "after_issue" and f.status == "pending"
            for f in self.follow_ups.values()
        )
        if troubled and not pending:
            self._open_follow_up(
                customer_id, owner, "after_issue", touch.event_id, journey_id, t + self.policy.follow_up_after_hours * 3600,
            )

    def _after_owner_change(self, customer_id: str, customer: Customer, decided: int, trigger: str, t: float) -> None:
        """Step 3, when the event changed the owner (its periods grew past ``decided``)."""
        if len(customer.owner_periods) == decided:
            return
        self._end_all(customer_id, "dropped", t, trigger)
        if customer.owner is not None:
            self._open_follow_up(customer_id, customer.owner, "check_in", trigger, None, t + self.policy.check_in_days * 86400)

    def follow_ups_view(self, as_of: float | None = None) -> set[tuple[object, ...]]:
        """§7 ``follow_ups``: follow_up_id, customer_id, owner_id, kind, anchor_event_id, journey_id, due_at,
        status, closed_at, closed_event_id (times as epoch seconds); ``as_of`` defaults to the latest event's time."""
        as_of = self.latest if as_of is None else as_of
        return {
            (key, f.customer_id, f.owner, f.kind, f.anchor, f.journey_id, f.due,
             "open" if f.status == "pending" else f.status, f.closed_at, f.closed_by)
            for key, f in self.follow_ups.items()
            if as_of is not None and f.due <= as_of and f.status != "cancelled"
        }

    # §6, §7

    def owner_history(self) -> set[tuple[object, ...]]:
        """customer_id, owner_id, valid_from, valid_to, reason, event_id (times as epoch seconds)."""
        rows: set[tuple[object, ...]] = set()
        for customer_id, customer in self.customers.items():
            periods = customer.owner_periods
            for n, (owner, since, reason, trigger) in enumerate(periods):
                until = periods[n + 1][1] if n + 1 < len(periods) else None
                rows.add((customer_id, owner, since, until, reason, trigger))
        return rows

    def journeys(self) -> set[tuple[object, ...]]:
        """journey_id, customer_id, journey_key, first and last event_id and time, touches, handoffs, resolved, fcr."""
        rows: set[tuple[object, ...]] = set()
        for customer_id, customer in self.customers.items():
            for journey_id in {x.journey_id for x in customer.touches}:
                touches = [x for x in customer.touches if x.journey_id == journey_id]
                first, last = touches[0], touches[-1]
                after_first = customer.touches[customer.touches.index(first) + 1:]
                repeated = any(
                    x.key == first.key and self.touches[x.event_id].repeat is not None
                    and 0 <= x.t - first.t <= self.policy.repeat_window_seconds
                    for x in after_first
                )
                rows.add((
                    journey_id, customer_id, first.key, first.event_id, last.event_id, first.t, last.t, len(touches),
                    sum(self.touches[x.event_id].handoff is not None for x in touches),
                    last.outcome == "resolved", first.outcome == "resolved" and not repeated,
                ))
        return rows

    def customer_metrics(self, as_of: float | None = None) -> set[tuple[object, ...]]:
        """customer_id, touches, employees_seen, owner_continuity, handoffs, silo_handoffs, repeat_contacts,
        first_seen, last_seen, churned, churned_at; ``as_of`` defaults to the latest event's time."""
        as_of = self.latest if as_of is None else as_of
        rows: set[tuple[object, ...]] = set()
        for customer_id, customer in self.customers.items():
            outcomes = [self.touches[x.event_id] for x in customer.touches]
            matches = [o.owner_match for o in outcomes if o.owner_match is not None]
            handoffs = [o.handoff for o in outcomes if o.handoff is not None]
            last_touch = max((x.t for x in customer.touches), default=None)
            silence = self.policy.churn_inactivity_days * 86400.0
            silent = last_touch is not None and as_of is not None and last_touch < as_of - silence
            churned_at = customer.churned_at if customer.churned_at is not None else last_touch if silent else None
            rows.add((
                customer_id, len(customer.touches), len({x.employee for x in customer.touches if x.employee}),
                sum(matches) / len(matches) if matches else None, len(handoffs),
                sum(1 for h in handoffs if h["cross_department"]), sum(o.repeat is not None for o in outcomes),
                min(customer.seen), max(customer.seen), churned_at is not None, churned_at,
            ))
        return rows

    def journey_outcomes(self, as_of: float | None = None) -> set[tuple[object, ...]]:
        """journey_id, customer_id, last_at, silo_handoffs, redirects, reexplained, ping_pongs, fcr,
        churned_within_window (§7: ``churned_at`` in [last_at, last_at + W], else False once that window
        closed by ``as_of``, else None)."""
        as_of = self.latest if as_of is None else as_of
        churned_at = {row[0]: row[10] for row in self.customer_metrics(as_of)}
        window = self.policy.outcome_window_days * 86400.0
        rows: set[tuple[object, ...]] = set()
        for journey_id, customer_id, *_, last_t, _touches, _handoffs, _resolved, fcr in self.journeys():
            assert isinstance(customer_id, str) and isinstance(last_t, float)
            touches = [x for x in self.customers[customer_id].touches if x.journey_id == journey_id]
            handoffs = [h for x in touches if (h := self.touches[x.event_id].handoff) is not None]
            at = churned_at[customer_id]
            churned: bool | None = None
            if isinstance(at, float) and last_t <= at <= last_t + window:
                churned = True
            elif as_of is not None and last_t + window <= as_of:
                churned = False
            rows.add((
                journey_id, customer_id, last_t, sum(bool(h["cross_department"]) for h in handoffs),
                sum(h["kind"] == "redirect" for h in handoffs), sum(bool(h["reexplained"]) for h in handoffs),
                sum(bool(h["ping_pong"]) for h in handoffs), fcr, churned,
            ))
        return rows
