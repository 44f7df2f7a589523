"""Availability and the route to a customer's person (SPEC §9), without I/O.

Every driver gathers the same inputs (the owner at *t*, each employee's affinity at *t*
with their latest touch, who is away or departed at *t*, the department of the latest
touches) and calls :func:`route`, so the worker's answer and ``spoc route``'s agree by
construction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cmp_to_key

from ledger.ownership import Candidate as Ranked
from ledger.ownership import ranks_above

ROUTE_CANDIDATES = 3
"""``route_candidates`` of SPEC §9: how many ranked others a route names at most."""


@dataclass(slots=True)
class Availability:
    """Who is away when: each employee's away periods, ``[start, end)`` (end None: until they return)."""

    periods: dict[str, list[list[float | None]]] = field(default_factory=dict)

    def away(self, employee_id: str, t: float, until: float | None) -> None:
        self.periods.setdefault(employee_id, []).append([t, until])

    def returned(self, employee_id: str, t: float) -> None:
        """Ends the latest away period begun at or before ``t`` that is still open at ``t``."""
        for period in reversed(self.periods.get(employee_id, ())):
            start, end = period
            assert start is not None
            if start <= t and (end is None or end > t):
                period[1] = t
                return

    def is_away(self, employee_id: str, t: float) -> bool:
        return any(
            start is not None and start <= t and (end is None or t < end)
            for start, end in self.periods.get(employee_id, ())
        )


@dataclass(frozen=True, slots=True)
class Candidate:
    employee_id: str
    affinity: float
    score: int


@dataclass(frozen=True, slots=True)
class Route:
    """SPEC §9's answer, its fields named as the SPEC names them."""

    owner: str | None
    owner_available: bool
    candidates: tuple[Candidate, ...]
    route_to: str | None
    department: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "owner": self.owner,
            "owner_available": self.owner_available,
            "candidates": [
                {"employee_id": c.employee_id, "affinity": c.affinity, "score": c.score} for c in self.candidates
            ],
            "route_to": self.route_to,
            "department": self.department,
        }


@dataclass(frozen=True, slots=True)
class Standing:
    """An employee's affinity for the customer at *t*, and their latest touch at or before *t*."""

    affinity: float
    last_touch: float


def _rule_2_order(a: Ranked, b: Ranked) -> int:
    """Rule 2's order of challengers: affinity (equal within a rounding), the most recent touch, the id."""
    return -1 if ranks_above(a, b) else 1 if ranks_above(b, a) else 0


_RULE_2_ORDER = cmp_to_key(_rule_2_order)


def score(affinity: float, best: float) -> int:
    """round(100 · A / A_max), halves rounded up (not to even: 12.5 is 13)."""
    return math.floor(100 * affinity / best + 0.5) if best > 0 else 0


def route(
    owner: str | None,
    standings: Mapping[str, Standing],
    unavailable: Callable[[str], bool],
    department_of: Callable[[str | None], str | None],
    candidates: int = ROUTE_CANDIDATES,
) -> Route:
    """The route of SPEC §9.

    ``unavailable(e)``: departed or away at *t*.  ``department_of(e)``: the department of the customer's
    latest touch with ``e`` (with any employee for None); None when there is none.
    """
    owner_available = owner is not None and not unavailable(owner)
    ranked = sorted(
        (
            Ranked(e, s.affinity, s.last_touch) for e, s in standings.items()
            if e != owner and s.affinity > 0 and not unavailable(e)
        ),
        key=_RULE_2_ORDER,
    )[:candidates]
    owner_standing = standings.get(owner) if owner is not None and owner_available else None
    owner_affinity = owner_standing.affinity if owner_standing is not None else 0.0
    best = max([owner_affinity, *(r.affinity for r in ranked)])
    chosen = tuple(Candidate(r.employee_id, r.affinity, score(r.affinity, best)) for r in ranked)
    route_to = owner if owner_available else chosen[0].employee_id if chosen else None
    department = department_of(route_to) if route_to is not None else None
    if department is None:
        department = department_of(None)
    return Route(owner, owner_available, chosen, route_to, department)
