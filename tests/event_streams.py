"""Hypothesis strategies: short histories of a few customers and employees, with every kind of event."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from tests.scenario import T0

CUSTOMERS = ("c1", "c2", "c3")
EMPLOYEES = ("alice", "bob", "carl", None)
DEPARTMENTS = ("sales", "billing", "support")
OFFSETS_MINUTES = (0, 0, 0, 120, -300, 330)


@st.composite
def touchpoint(
    draw: st.DrawFn, customers: tuple[str, ...] = CUSTOMERS, employees: tuple[str | None, ...] = EMPLOYEES
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "customer_id": draw(st.sampled_from(customers)),
        "channel": "phone",
        "direction": draw(st.sampled_from(("inbound", "outbound"))),
        "department": draw(st.sampled_from(DEPARTMENTS)),
        "employee_id": draw(st.sampled_from(employees)),
        "outcome": draw(st.sampled_from(("resolved", "unresolved", "transferred", "redirected", "abandoned", "pending", None))),
    }
    if draw(st.booleans()):
        event["topic"] = draw(st.sampled_from(("refund", "invoice")))
    if draw(st.integers(0, 4)) == 0:
        event["case_id"] = draw(st.sampled_from(("T-1", "T-2")))
    kind = draw(st.sampled_from((None, None, "purchase", "inquiry", "complaint")))
    if kind is not None:
        event["kind"] = kind
    context_passed = draw(st.sampled_from((None, None, True, False)))  # a warm transfer on `transferred` only
    if context_passed is not None:
        event["context_passed"] = context_passed
    csat = draw(st.sampled_from((None, 1, 2, 3, 4, 5)))  # both edges: productive at 4, penalised at 2
    if csat is not None:
        event["csat"] = csat
    return event


def control(customers: tuple[str, ...] = CUSTOMERS) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda c: {"type": "customer_churned", "customer_id": c}, st.sampled_from(customers)),
        st.builds(lambda e: {"type": "employee_departed", "employee_id": e}, st.sampled_from(EMPLOYEES[:3])),
        st.builds(lambda c, e: {"type": "owner_pinned", "customer_id": c, "employee_id": e},
                  st.sampled_from(customers), st.sampled_from(EMPLOYEES[:3])),
        st.builds(lambda c: {"type": "owner_unpinned", "customer_id": c}, st.sampled_from(customers)),
        st.builds(lambda c: {"type": "customer_erased", "customer_id": c}, st.sampled_from(customers)),
        # Away and back: routing only; ownership, journeys and follow-ups must not notice (§9).
        st.builds(lambda e: {"type": "employee_away", "employee_id": e}, st.sampled_from(EMPLOYEES[:3])),
        st.builds(
            lambda e, days: {"type": "employee_away", "employee_id": e, "until": (T0 + timedelta(days=days)).isoformat()},
            st.sampled_from(EMPLOYEES[:3]), st.sampled_from((1, 8, 40, 400)),
        ),
        st.builds(lambda e: {"type": "employee_returned", "employee_id": e}, st.sampled_from(EMPLOYEES[:3])),
    )


@st.composite
def streams(
    draw: st.DrawFn, customers: tuple[str, ...] = CUSTOMERS, max_events: int = 40, instants: tuple[int, ...] = ()
) -> list[dict[str, Any]]:
    """A history with hours-to-months gaps (the SPEC's windows exactly among them) and the occasional late event.

    Fewer customers and more events give each customer a longer history; with
    ``instants`` (days) every event happens at one of them, in any order, so many
    touches share a time and affinities tie.  Each
    history has its own mix: some employees far busier than others (so that one
    can overtake an owner), and anything from no control events to one in three.
    """
    events = []
    at = T0
    busy = EMPLOYEES + tuple(draw(st.lists(st.sampled_from(EMPLOYEES), max_size=8)))
    touch, other = touchpoint(customers, busy), control(customers)
    controls_in_twelve = draw(st.integers(0, 4))
    for n in range(draw(st.integers(1, max_events))):
        body = draw(other if draw(st.integers(0, 11)) < controls_in_twelve else touch)
        if instants:
            occurred = T0 + timedelta(days=draw(st.sampled_from(instants)))
        else:
            at += timedelta(hours=draw(st.sampled_from((0, 1, 30, 48, 72, 80, 24 * 7, 24 * 8, 24 * 40, 24 * 60, 24 * 200))))
            occurred = at - timedelta(hours=draw(st.sampled_from((0, 0, 0, 0, 5, 100, 24 * 9))))
        # The same instant written in another zone (SPEC §1: any offset) must not change a thing.
        zone = timezone(timedelta(minutes=draw(st.sampled_from(OFFSETS_MINUTES))))
        events.append({"event_id": f"ev-{n}", "occurred_at": occurred.astimezone(zone).isoformat(), **body})
    return events
