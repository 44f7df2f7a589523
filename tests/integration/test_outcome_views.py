"""SPEC §7's outcome views (journeys and survival instead of exposure), each on a small history
worked out by hand, replayed into a real DuckDB file."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from ledger.policy import Policy
from tests.replaying import rows, run_replay, write_jsonl
from tests.scenario import T0

# Short outcome windows and no inactivity churn, so each number below is countable by hand.
POLICY = Policy(outcome_window_days=10, landmark_days=10, churn_inactivity_days=1000)
AS_OF = T0 + timedelta(days=400)
Z2 = 1.959963984540054**2


def at(days: float, hours: float = 0.0) -> str:
    return (T0 + timedelta(days=days, hours=hours)).isoformat()


class History:
    """Input lines built in order, with event ids ``<customer>-<n>`` unless given."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._ids = count(1)

    def touch(
        self, customer: str, days: float, employee: str | None = "e1", *, hours: float = 0.0,
        department: str = "billing", direction: str = "inbound", channel: str = "phone", **fields: Any,
    ) -> str:
        event_id = fields.pop("event_id", f"{customer}-{next(self._ids)}")
        self.events.append({
            "event_id": event_id, "occurred_at": at(days, hours), "customer_id": customer, "department": department,
            "employee_id": employee, "direction": direction, "channel": channel, **fields,
        })
        return event_id

    def churn(self, customer: str, days: float) -> None:
        self.events.append({
            "type": "customer_churned", "event_id": f"{customer}-churn", "occurred_at": at(days), "customer_id": customer,
        })

    def replay(self, tmp: Path, policy: Policy = POLICY) -> Path:
        db, _ = run_replay(tmp, [write_jsonl(tmp / "in.jsonl", self.events)], as_of=AS_OF, policy=policy)
        return db


def test_journey_outcomes_judge_each_journey_by_churn_within_the_window_after_it(tmp_path: Path) -> None:
    h = History()
    # c1: billing transfers to support (a silo handoff, re-explained); churns 5 days later: churned.
    h.touch("c1", 0, "e1", case_id="a", outcome="transferred")
    h.touch("c1", 0, "e2", hours=1, case_id="a", department="support", outcome="resolved")
    h.churn("c1", 5)
    # c2: resolved at once, kept for the whole window: not churned.
    h.touch("c2", 0, "e1", case_id="b", outcome="resolved")
    # c3: its window reaches past as_of: not judged.
    h.touch("c3", 395, "e1", case_id="c", outcome="resolved")
    # c4: redirected billing → support → billing (two silo handoffs, the second a ping-pong);
    # churns on day 20, after its window closed on day 12: not churned within it.
    h.touch("c4", 0, "e1", case_id="d", outcome="redirected")
    h.touch("c4", 1, "e2", case_id="d", department="support", outcome="redirected")
    h.touch("c4", 2, "e3", case_id="d", outcome="resolved")
    h.churn("c4", 20)
    db = h.replay(tmp_path)

    outcomes = rows(db, "SELECT customer_id, silo_handoffs, redirects, reexplained, ping_pongs, fcr, churned_within_window "
                        "FROM journey_outcomes ORDER BY customer_id")
    assert outcomes == [
        ("c1", 1, 0, 1, 0, False, True),
        ("c2", 0, 0, 0, 0, True, False),
        ("c3", 0, 0, 0, 0, True, None),
        ("c4", 2, 2, 2, 1, False, False),
    ]
    by_bucket = {row[0]: row[1:] for row in rows(db, "SELECT * FROM churn_after_journeys")}
    assert list(by_bucket) == ["0", "1", "2+"]
    # One journey each; the 95 % Wilson interval of 0 in 1 is [0, z²/(1+z²)], of 1 in 1 is [1/(1+z²), 1].
    assert by_bucket["0"] == pytest.approx((1, 0, 0.0, 0.0, Z2 / (1 + Z2)))
    assert by_bucket["1"] == pytest.approx((1, 1, 1.0, 1 / (1 + Z2), 1.0))
    assert by_bucket["2+"] == pytest.approx((1, 0, 0.0, 0.0, Z2 / (1 + Z2)))


def test_continuity_survival_follows_customers_from_their_landmark_with_kaplan_meier(tmp_path: Path) -> None:
    h = History()

    def owned(customer: str, *employees: str) -> None:
        """First assigned to e1 on day 0 (a resolved touch), then touches every 2 days (landmark: day 10)."""
        h.touch(customer, 0, "e1", case_id=f"{customer}-0", outcome="resolved")
        for i, employee in enumerate(employees, 1):
            h.touch(customer, 2 * i, employee, case_id=f"{customer}-{i}", outcome="resolved")

    # 75-100: churned 100 and 190 days after the landmark, one followed to as_of (390 days).
    for customer, churned_on in (("s1", 110), ("s2", None), ("s7", 200)):
        owned(customer, "e1")
        if churned_on is not None:
            h.churn(customer, churned_on)
    # 0-25: churned 2 and 90 days after the landmark, one followed to as_of.
    for customer, churned_on in (("s3", 12), ("s8", 100), ("s9", None)):
        owned(customer, "e2")
        if churned_on is not None:
            h.churn(customer, churned_on)
    owned("s4")  # none: no touch between the first assignment and the landmark
    owned("s10", "e1", "e2", "e2")  # 25-50 (1 of 3 with the owner), followed to as_of
    owned("s11", "e1", "e2")  # 50-75 (1 of 2), churned 50 days after the landmark: nobody followed 90 days
    h.churn("s11", 60)
    owned("s5")  # no landmark yet: first assigned on day 0 ...
    h.events[-1]["occurred_at"] = at(395)  # ... of its own, 395
    owned("s6", "e1")  # churned at its landmark: left out
    h.churn("s6", 10)
    db = h.replay(tmp_path)

    survival = {row[0]: row[1:] for row in rows(db, "SELECT * FROM continuity_survival")}
    assert list(survival) == ["0-25", "25-50", "50-75", "75-100", "none"]
    # 75-100 at risk: 3 at day 100 (1 churns: 2/3), 2 at day 190 (1 churns: 1/3), 1 censored at 390.
    assert survival["75-100"] == pytest.approx((3, 2, 1.0, 2 / 3, 1 / 3))
    # 0-25: 3 at day 2 (2/3), 2 at day 90 (1/3; a churn on the 90th day counts in survival_90d).
    assert survival["0-25"] == pytest.approx((3, 2, 1 / 3, 1 / 3, 1 / 3))
    assert survival["25-50"] == pytest.approx((1, 0, 1.0, 1.0, 1.0))
    assert survival["50-75"][:2] == (1, 1)
    assert survival["50-75"][2:] == (None, None, None)
    assert survival["none"] == pytest.approx((1, 0, 1.0, 1.0, 1.0))


def test_help_first_counts_how_inbound_touches_ended_and_who_resolved_outside_the_home_department(tmp_path: Path) -> None:
    h = History()
    h.touch("h1", 0, "e1", topic="billing.refund", outcome="resolved")  # home: support (the longer prefix)
    h.touch("h1", 1, "e1", topic="billing.invoice", outcome="transferred")
    h.touch("h2", 0, "e1", topic="billing.x", outcome="redirected")
    h.touch("h2", 1, "e1", outcome="unresolved")  # no topic: no home
    h.touch("h3", 0, "e2", department="support", topic="billing.refund", outcome="resolved")
    h.touch("h3", 1, "e2", department="support", direction="outbound", outcome="resolved")  # not inbound
    h.touch("h3", 2, None, department="support", outcome="resolved")  # no employee
    h.touch("h4", 0, "e3", department="sales", topic="other", outcome="abandoned")
    h.touch("h4", 1, "e2", department="support", topic="shipping", outcome="resolved")  # no matching prefix
    policy = Policy(home_departments={"billing": "billing", "billing.refund": "support"})
    db = h.replay(tmp_path, policy)

    assert rows(db, "SELECT * FROM help_first") == [
        ("billing", "e1", 4, 1, 1, 1, pytest.approx(1 / 3), 1),
        ("sales", "e3", 1, 0, 0, 0, None, 0),
        ("support", "e2", 2, 2, 0, 0, 1.0, 0),
    ]


def test_journey_effort_counts_redirects_channel_switches_dead_ends_and_hours_to_resolve(tmp_path: Path) -> None:
    h = History()
    # a: self-service that left it unresolved, a redirect from billing to support, two chats.
    h.touch("j1", 0, None, hours=1, case_id="a", channel="portal", outcome="unresolved")
    h.touch("j1", 0, "e1", hours=2, case_id="a", channel="phone", outcome="redirected")
    h.touch("j1", 0, "e2", hours=4, case_id="a", channel="chat", department="support", outcome="resolved")
    h.touch("j1", 0, "e2", hours=5, case_id="a", channel="chat", department="support", outcome="resolved")
    # b: self-service with no outcome that nothing followed: no dead end, never resolved.
    h.touch("j2", 1, None, case_id="b", channel="portal")
    # c: resolved by self-service at once.
    h.touch("j3", 2, None, case_id="c", channel="portal", outcome="resolved")
    h.touch("j3", 2, None, hours=1, case_id="c", channel="portal")
    # d: self-service with no outcome, then a call that resolved it half an hour later.
    h.touch("j4", 3, None, case_id="d", channel="portal")
    h.touch("j4", 3, "e1", hours=0.5, case_id="d", channel="phone", outcome="resolved")
    db = h.replay(tmp_path)

    assert rows(db, "SELECT customer_id, touches, redirects, channel_switches, self_service_dead_ends, hours_to_resolve "
                    "FROM journey_effort ORDER BY customer_id") == [
        ("j1", 4, 1, 2, 1, pytest.approx(3.0)),
        ("j2", 1, 0, 0, 0, None),
        ("j3", 2, 0, 0, 0, 0.0),
        ("j4", 2, 0, 1, 1, pytest.approx(0.5)),
    ]


def test_owner_change_outcomes_compare_the_window_before_a_change_with_the_window_after(tmp_path: Path) -> None:
    h = History()
    h.touch("o1", 0, "e1", case_id="x", outcome="resolved", csat=5)  # first assignment: not a change
    h.touch("o1", 12, "e1", case_id="x", outcome="resolved", csat=5)
    h.touch("o1", 15, "e1", case_id="x", outcome="resolved", csat=3)  # a repeat contact of day 12
    h.events.append({"type": "owner_pinned", "event_id": "o1-pin", "occurred_at": at(20), "customer_id": "o1",
                     "employee_id": "e2"})
    h.touch("o1", 20, "e2", case_id="y", outcome="resolved", csat=1)  # at the change: in neither window
    h.touch("o1", 22, "e2", case_id="y", outcome="resolved", csat=2)  # a repeat contact of day 20
    h.touch("o1", 25, "e2", case_id="y", outcome="resolved", csat=4)  # and of day 22
    h.touch("o1", 31, "e2", case_id="y", outcome="resolved", csat=1)  # after the window
    h.churn("o1", 28)
    h.touch("o2", 0, "e1", outcome="resolved")
    h.events.append({"type": "owner_pinned", "event_id": "o2-pin", "occurred_at": at(395), "customer_id": "o2",
                     "employee_id": "e2"})
    db = h.replay(tmp_path)

    assert rows(db, "SELECT customer_id, event_id, reason, touches_before, touches_after, repeat_contacts_before, "
                    "repeat_contacts_after, mean_csat_before, mean_csat_after, churned_within_window "
                    "FROM owner_change_outcomes ORDER BY customer_id") == [
        ("o1", "o1-pin", "pinned", 2, 2, 1, 2, 4.0, 3.0, True),
        ("o2", "o2-pin", "pinned", 0, 0, 0, 0, None, None, None),  # its window reaches past as_of
    ]
    (changed_at,) = rows(db, "SELECT changed_at FROM owner_change_outcomes WHERE customer_id = 'o1'")[0]
    assert changed_at == datetime.fromisoformat(at(20))
