"""Journeys and handoffs (SPEC §4): which journey a touch joins, and the handoff it makes."""

from __future__ import annotations

from dataclasses import dataclass
from sys import intern

from schemas.events import Touchpoint

TRANSFER = "transfer"
REDIRECT = "redirect"
BOUNCE = "bounce"


def journey_key(touch: Touchpoint) -> str:
    """``case:<case_id>``, else ``topic:<topic>`` (``topic:general`` when absent)."""
    if touch.case_id is not None:
        return f"case:{touch.case_id}"
    return f"topic:{touch.topic if touch.topic is not None else 'general'}"


@dataclass(slots=True)
class Journey:
    """A journey's identity and its last touch: all a later touch needs to join it and name its handoff.

    Case journeys are kept for ever, so the strings that repeat across touches
    (departments, employees) are interned: one copy each, not one per journey.
    """

    journey_id: str
    last_event_id: str
    last_at: float
    last_outcome: str | None
    last_employee_id: str | None
    last_department: str
    last_warm_transfer: bool = False
    """The last touch was ``transferred`` with ``context_passed``: its receiver needs no re-explaining."""
    earlier_departments: set[str] | None = None
    """Departments of the journey's touches before its last one (created at the first handoff)."""


@dataclass(slots=True)  # not frozen: see the docstring of ledger/records.py
class Handoff:
    journey_id: str
    from_event_id: str
    to_event_id: str
    from_department: str
    to_department: str
    from_employee_id: str | None
    to_employee_id: str | None
    kind: str
    cross_department: bool
    reexplained: bool
    ping_pong: bool
    gap_seconds: float


@dataclass(slots=True)  # not frozen: see the docstring of ledger/records.py
class Placement:
    """Where a touch landed: its journey, the touch before it there (if any), and the handoff."""

    journey_id: str
    key: str
    previous_outcome: str | None
    handoff: Handoff | None


class JourneyBook:
    """A customer's journeys that can still receive touches.

    Case journeys stay open for ever (a case can come back at any time); a topic
    has at most one open journey, which closes when a later touch opens a new one.
    """

    __slots__ = ("by_case", "by_topic")

    def __init__(self) -> None:
        self.by_case: dict[str, Journey] = {}
        self.by_topic: dict[str, Journey] = {}

    def place(self, touch: Touchpoint, t: float, window_seconds: float) -> Placement:
        key = journey_key(touch)
        if touch.case_id is not None:
            journeys, slot = self.by_case, touch.case_id
            journey = journeys.get(slot)
        else:
            journeys, slot = self.by_topic, key
            journey = journeys.get(slot)
            if journey is not None and (
                journey.last_outcome == "resolved" or t - journey.last_at > window_seconds
            ):
                journey = None
        if journey is None:
            journeys[slot] = self._open(touch, t)
            return Placement(touch.event_id, key, None, None)
        handoff = _handoff(journey, touch, t)
        previous_outcome = journey.last_outcome
        if journey.earlier_departments is None:
            journey.earlier_departments = {journey.last_department}
        else:
            journey.earlier_departments.add(journey.last_department)
        journey.last_event_id = touch.event_id
        journey.last_at = t
        journey.last_outcome = touch.outcome
        journey.last_employee_id, journey.last_department = _kept(touch)
        journey.last_warm_transfer = _warm_transfer(touch)
        return Placement(journey.journey_id, key, previous_outcome, handoff)

    @staticmethod
    def _open(touch: Touchpoint, t: float) -> Journey:
        employee_id, department = _kept(touch)
        return Journey(
            journey_id=touch.event_id,
            last_event_id=touch.event_id,
            last_at=t,
            last_outcome=touch.outcome,
            last_employee_id=employee_id,
            last_department=department,
            last_warm_transfer=_warm_transfer(touch),
        )


def _warm_transfer(touch: Touchpoint) -> bool:
    return touch.outcome == "transferred" and touch.context_passed is True


def _kept(touch: Touchpoint) -> tuple[str | None, str]:
    """The touch's employee and department as a journey keeps them: interned."""
    return (None if touch.employee_id is None else intern(touch.employee_id)), intern(touch.department)


def _handoff(journey: Journey, touch: Touchpoint, t: float) -> Handoff | None:
    employee_changed = journey.last_employee_id != touch.employee_id
    cross_department = journey.last_department != touch.department
    if not (employee_changed or cross_department):
        return None
    outcome = journey.last_outcome
    kind = TRANSFER if outcome == "transferred" else REDIRECT if outcome == "redirected" else BOUNCE
    # The journey's departments before this touch: earlier ones plus the last touch's.
    earlier = journey.earlier_departments
    seen_before = touch.department == journey.last_department or (earlier is not None and touch.department in earlier)
    return Handoff(
        journey_id=journey.journey_id,
        from_event_id=journey.last_event_id,
        to_event_id=touch.event_id,
        from_department=journey.last_department,
        to_department=touch.department,
        from_employee_id=journey.last_employee_id,
        to_employee_id=touch.employee_id,
        kind=kind,
        cross_department=cross_department,
        reexplained=employee_changed and not journey.last_warm_transfer,
        ping_pong=cross_department and seen_before,
        gap_seconds=t - journey.last_at,
    )
