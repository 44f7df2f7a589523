"""Who owns a customer (SPEC §3), in one place: rules 1–3, the challenger cache, pins and departures.

The core calls :class:`OwnerRules` after each of a customer's events, and for each
customer a departing employee owns; the :class:`~ledger.relationship.Relationship`
aggregate records what they decide, and applies :func:`pin_survives` when it does.
Candidates are ranked by affinity (:mod:`ledger.affinity`), ties to the most recent
touch, then to the lowest ``employee_id``.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import datetime
from math import isclose
from typing import TYPE_CHECKING

from ledger.affinity import Affinity, is_productive
from ledger.policy import Policy
from schemas.events import Touchpoint

if TYPE_CHECKING:
    from ledger.core import Customer
    from ledger.relationship import Relationship

# The reasons a decision records.
FIRST_PRODUCTIVE_CONTACT = "first_productive_contact"
AFFINITY = "affinity"
OWNER_DEPARTED = "owner_departed"
OWNER_DEPARTED_UNASSIGNED = "owner_departed_unassigned"
PINNED = "pinned"
PIN_TO_DEPARTED = "employee_departed"

SAME_AFFINITY = 1e-9
"""Affinities this close (relative to the larger) are equal.

The SPEC's sums are exact; kept as running values (ledger/affinity.py) two equal
sums can differ in their last bits, e.g. one employee's ``1.0`` against another's
``1.0`` plus a touch of weight ``0``, and a tie would then go to whichever rounded
up instead of to the most recent touch.  Real differences are far larger: touches
one second apart differ by ~4e-8 at the SPEC's half-life.
"""


@dataclass(slots=True)  # not frozen: see the docstring of ledger/records.py
class Candidate:
    employee_id: str
    affinity: float
    last_touch: float


def best_candidate(
    affinities: Mapping[str, Affinity],
    t: float,
    half_life: float,
    *,
    exclude: str | None,
    departed: Set[str],
) -> Candidate | None:
    """The active employee with the highest affinity at ``t``.

    Ties go to the most recent touch, then to the lowest ``employee_id``.
    Employees with no touch at or before ``t``, departed ones and ``exclude``
    (the current owner) are not candidates.
    """
    best: Candidate | None = None
    for employee_id, affinity in affinities.items():
        if employee_id == exclude or employee_id in departed:
            continue
        last = affinity.last_touch_at_or_before(t)
        if last == float("-inf"):
            continue
        candidate = Candidate(employee_id, affinity.at(t, half_life), last)
        if best is None or ranks_above(candidate, best):
            best = candidate
    return best


def same_affinity(a: float, b: float) -> bool:
    return isclose(a, b, rel_tol=SAME_AFFINITY)


def ranks_above(a: Candidate, b: Candidate) -> bool:
    """Higher affinity; ties: the more recent touch, then the lower employee_id."""
    if not same_affinity(a.affinity, b.affinity):
        return a.affinity > b.affinity
    if a.last_touch != b.last_touch:
        return a.last_touch > b.last_touch
    return a.employee_id < b.employee_id


def challenger_wins(challenger: float, owner: float, policy: Policy) -> bool:
    """Rule 2: A(e) >= max(ratio * A(o), A(o) + margin)."""
    bar = max(policy.stability_ratio * owner, owner + policy.stability_margin)
    return challenger >= bar or same_affinity(challenger, bar)


def stability_gap_passed(t: float, last_change: float, policy: Policy) -> bool:
    return t - last_change >= policy.min_seconds_between_changes


def pin_survives(pinned: bool, reason: str) -> bool:
    """Whether a customer stays pinned through an owner change: a departure ends a pin (rule 3)."""
    return pinned and reason not in (OWNER_DEPARTED, OWNER_DEPARTED_UNASSIGNED)


class OwnerRules:
    """Rules 1–3 and pins, over a customer's affinities and the employees who have departed."""

    def __init__(self, policy: Policy, departed: Set[str]) -> None:
        self.policy = policy
        self.departed = departed
        """Shared with the core, which adds each departure."""
        self.half_life = policy.half_life_seconds

    def apply(
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
                affinity = customer.affinities[employee_id].at(t, self.half_life)
                relationship.assign(employee_id, FIRST_PRODUCTIVE_CONTACT, {employee_id: affinity}, trigger, at)
            return
        # Rule 2: a challenger replaces the owner only by a clear margin, and not too soon.
        assert relationship.owner_since is not None  # set with every owner
        if not stability_gap_passed(t, relationship.owner_since.timestamp(), self.policy):
            return
        challenger = self.challenger(customer, t)
        if challenger is None:
            return
        owner_affinity = customer.affinities[owner_id].at(t, self.half_life) if owner_id in customer.affinities else 0.0
        if challenger_wins(challenger.affinity, owner_affinity, self.policy):
            relationship.assign(
                challenger.employee_id,
                AFFINITY,
                {challenger.employee_id: challenger.affinity, owner_id: owner_affinity},
                trigger,
                at,
            )

    def challenger(self, customer: Customer, t: float) -> Candidate | None:
        """Rule 2's challenger: the active non-owner with the highest affinity at ``t``."""
        cached = customer.challenger
        if customer.challenger_known and t >= customer.latest_touch and cached not in self.departed:
            if cached is None:
                return None
            affinity = customer.affinities[cached]
            return Candidate(cached, affinity.at(t, self.half_life), affinity.last_touch)
        best = best_candidate(
            customer.affinities, t, self.half_life, exclude=customer.relationship.owner_id, departed=self.departed
        )
        if t >= customer.latest_touch:
            customer.challenger = best.employee_id if best is not None else None
            customer.challenger_known = True
        return best

    def note_touch(self, customer: Customer, employee_id: str, weight: float, t: float) -> None:
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
            if ranks_above(toucher, Candidate(cached, leader.at(t, self.half_life), leader.last_touch)):
                customer.challenger = employee_id

    def hand_over(self, customer: Customer, employee_id: str, trigger: str, at: datetime) -> None:
        """Rule 3, for one customer ``employee_id`` owned: the best active successor, or none."""
        successor = best_candidate(
            customer.affinities, at.timestamp(), self.half_life, exclude=employee_id, departed=self.departed
        )
        if successor is not None and successor.affinity > 0.0:
            customer.relationship.assign(
                successor.employee_id, OWNER_DEPARTED, {successor.employee_id: successor.affinity}, trigger, at
            )
        else:
            customer.relationship.assign(None, OWNER_DEPARTED_UNASSIGNED, {}, trigger, at)

    def pin(self, relationship: Relationship, employee_id: str, trigger: str, at: datetime) -> None:
        """``owner_pinned``: the employee owns until unpinned, unless they have departed (never again)."""
        if employee_id in self.departed:
            relationship.refuse_pin(employee_id, trigger, at)
        else:
            relationship.pin(employee_id, trigger, at)

    def unpin(self, relationship: Relationship, trigger: str, at: datetime) -> None:
        if relationship.pinned:
            relationship.unpin(trigger, at)
