"""Who should own a customer (SPEC §3): candidate ranking and the stability test.

Pure functions over a customer's affinities; the Relationship aggregate applies
what they decide.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from math import isclose

from ledger.affinity import Affinity
from ledger.policy import Policy

SAME_AFFINITY = 1e-9
"""Affinities this close (relative to the larger) are equal.

The SPEC's sums are exact; kept as running values (ledger/affinity.py) two equal
sums can differ in their last bits, e.g. one employee's ``1.0`` against another's
``1.0`` plus a touch of weight ``0``, and a tie would then go to whichever rounded
up instead of to the most recent touch.  Real differences are far larger: touches
one second apart differ by ~4e-8 at the SPEC's half-life.
"""


@dataclass(slots=True)  # not frozen: see the docstring of ledger/core.py
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
