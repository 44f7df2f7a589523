"""SPEC §8, clause by clause: the follow-ups the core keeps for an owner, and how they move."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID, uuid5

import pytest

from ledger.core import LedgerCore
from ledger.followups import FollowUpFact
from ledger.policy import Policy
from tests.scenario import Scenario, day

CHECK_IN = timedelta(days=60)
AFTER_ISSUE = timedelta(hours=48)


class FollowUpScenario(Scenario):
    """A scenario that also reads the follow-ups: each one's latest transition, by anchor and kind."""

    def __init__(self, policy: Policy | None = None, *, announce: bool = False) -> None:
        super().__init__() if policy is None else super().__init__(policy)
        if announce:
            self.core = LedgerCore(self.core.policy, announce_follow_ups=True)
        self.facts: list[FollowUpFact] = []

    def send(self, **fields: object) -> str:
        event_id = super().send(**fields)
        self.facts += self.core.follow_ups.facts
        self.core.follow_ups.facts = []
        return event_id

    def latest(self) -> dict[tuple[str, str], FollowUpFact]:
        found: dict[tuple[str, str], FollowUpFact] = {}
        for fact in self.facts:
            found[(fact.follow_up.kind, fact.follow_up.anchor_event_id)] = fact
        return found

    def status(self, kind: str, anchor: str) -> str:
        """``open`` while the customer's book holds it as due (falling due writes no row), else its last row's."""
        fact = self.latest()[(kind, anchor)]
        customer = self.core.customer(fact.customer_id)
        book = None if customer is None else customer.follow_ups
        if book is not None and any(f.follow_up_id == fact.follow_up.follow_up_id for f in book.open):
            return "open"
        return fact.status

    def of(self, kind: str, anchor: str) -> FollowUpFact:
        return self.latest()[(kind, anchor)]


def owned_by_alice() -> tuple[FollowUpScenario, str]:
    s = FollowUpScenario()
    first = s.resolved(day(0), "alice")
    assert s.owner() == "alice"
    return s, first


def test_the_first_assignment_anchors_a_check_in_due_check_in_days_later() -> None:
    s, first = owned_by_alice()
    check_in = s.of("check_in", first)
    assert (check_in.status, check_in.follow_up.owner_id, check_in.follow_up.due_at) == ("pending", "alice", day(0) + CHECK_IN)
    assert check_in.follow_up.journey_id is None
    assert check_in.follow_up.follow_up_id == str(
        uuid5(UUID("6f0e5d0c-3b1c-4d5e-9a8f-5c0c1e2d3a4b"), f"c1\x00check_in\x00{first}")
    )


@pytest.mark.parametrize("anchor", ["tp-1", "", "ünïcode-ëvent", "x" * 128])
def test_the_follow_up_id_is_the_libraries_uuid5(anchor: str) -> None:
    from ledger.followups import follow_up_id

    expected = uuid5(UUID("6f0e5d0c-3b1c-4d5e-9a8f-5c0c1e2d3a4b"), f"cust-9\x00after_issue\x00{anchor}")
    assert follow_up_id("cust-9", "after_issue", anchor) == str(expected)


def test_a_follow_up_becomes_due_on_the_customers_next_event_after_its_due_time_not_at_it() -> None:
    s, first = owned_by_alice()
    s.touch(day(60), None, department="support", outcome="pending", topic="a")  # exactly at due_at: not before it
    assert s.status("check_in", first) == "pending"
    s.touch(day(60, hours=1), None, department="support", outcome="pending", topic="a")
    assert s.status("check_in", first) == "open"


def test_another_customers_events_do_not_make_a_follow_up_due() -> None:
    s, first = owned_by_alice()
    s.resolved(day(90), "bob", customer="c2")
    assert s.status("check_in", first) == "pending"


def test_an_owner_touch_cancels_what_is_pending_closes_what_is_open_and_anchors_a_new_check_in() -> None:
    s, first = owned_by_alice()
    issue = s.touch(day(1), "bob", csat=1, outcome="unresolved")  # after_issue, pending
    s.touch(day(4), None, outcome="pending", topic="x")  # the after_issue falls due (day 3 < day 4)
    assert s.status("after_issue", issue) == "open"
    touch = s.touch(day(5), "alice", outcome="unresolved", direction="outbound")
    assert s.status("check_in", first) == "cancelled"  # pending: it never became due
    done = s.of("after_issue", issue)
    assert (done.status, done.closed_at, done.closed_event_id) == ("done", day(5), touch)
    assert s.of("check_in", touch).follow_up.due_at == day(5) + CHECK_IN


@pytest.mark.parametrize(
    "fields",
    [
        {"csat": 2, "outcome": "unresolved"},
        {"outcome": "redirected"},
        {"outcome": "abandoned"},
        {"kind": "complaint", "outcome": "unresolved"},
    ],
    ids=["low-csat", "redirected", "abandoned", "complaint"],
)
def test_a_touch_that_went_badly_with_someone_else_anchors_an_after_issue(fields: dict[str, Any]) -> None:
    s, _ = owned_by_alice()
    bad = s.touch(day(1), "bob", topic="refund", **fields)
    after = s.of("after_issue", bad)
    assert (after.status, after.follow_up.owner_id, after.follow_up.due_at) == ("pending", "alice", day(1) + AFTER_ISSUE)
    assert after.follow_up.journey_id == s.fact(bad).journey_id


def test_the_later_touch_of_a_silo_handoff_anchors_an_after_issue_with_its_journey() -> None:
    s, _ = owned_by_alice()
    s.touch(day(1), "bob", department="billing", topic="refund", outcome="transferred")
    later = s.touch(day(1, hours=1), "carl", department="support", topic="refund", outcome="resolved")
    handoff = s.fact(later).handoff
    assert handoff is not None and handoff.cross_department
    assert s.of("after_issue", later).follow_up.journey_id == s.fact(later).journey_id


def test_the_same_trouble_with_the_owner_or_a_customer_without_owner_anchors_nothing() -> None:
    s, _ = owned_by_alice()
    s.touch(day(1), "alice", csat=1, outcome="unresolved")  # the owner's own touch
    assert not [f for f in s.facts if f.follow_up.kind == "after_issue"]
    unowned = FollowUpScenario()
    unowned.touch(day(0), "bob", csat=1, outcome="unresolved")
    assert unowned.facts == []


def test_while_an_after_issue_is_pending_a_new_trigger_opens_none_once_it_is_due_one_does() -> None:
    s, _ = owned_by_alice()
    first = s.touch(day(1), "bob", outcome="abandoned")
    second = s.touch(day(1, hours=5), "bob", outcome="abandoned")
    assert ("after_issue", second) not in s.latest()
    third = s.touch(day(4), "bob", outcome="abandoned")  # the first fell due before this touch
    assert s.status("after_issue", first) == "open"
    assert s.status("after_issue", third) == "pending"


def test_an_owner_change_drops_the_open_cancels_the_pending_and_anchors_the_new_owners_check_in() -> None:
    s, first = owned_by_alice()
    issue = s.touch(day(1), "bob", outcome="abandoned")
    s.touch(day(4), None, outcome="pending", topic="x")
    pin = s.pin(day(5), "bob")
    dropped = s.of("after_issue", issue)
    assert (dropped.status, dropped.closed_at, dropped.closed_event_id) == ("dropped", day(5), pin)
    assert s.status("check_in", first) == "cancelled"
    new = s.of("check_in", pin)
    assert (new.status, new.follow_up.owner_id, new.follow_up.due_at) == ("pending", "bob", day(5) + CHECK_IN)


def test_pinning_the_current_owner_changes_no_follow_up() -> None:
    s, first = owned_by_alice()
    s.pin(day(5), "alice")
    assert s.status("check_in", first) == "pending"


def test_customer_churned_drops_and_anchors_nothing_until_the_next_owner_touch() -> None:
    s, first = owned_by_alice()
    s.touch(day(70), None, outcome="pending", topic="x")
    churned = s.send(type="customer_churned", at=day(71), customer_id="c1")
    assert (s.status("check_in", first), s.of("check_in", first).closed_event_id) == ("dropped", churned)
    assert [f.status for f in s.facts if f.follow_up.anchor_event_id == churned] == []
    back = s.touch(day(80), "alice", outcome="resolved")
    assert s.status("check_in", back) == "pending"


def test_a_departure_is_an_event_of_each_customer_the_employee_owns() -> None:
    s, first = owned_by_alice()
    s.touch(day(2), "bob", outcome="resolved", customer="c1")
    gone = s.depart(day(70), "alice")  # the check_in (due day 60) falls due first, then is dropped
    assert (s.status("check_in", first), s.of("check_in", first).closed_event_id) == ("dropped", gone)
    assert s.owner() == "bob"
    assert s.of("check_in", gone).follow_up.owner_id == "bob"


def test_a_departure_that_leaves_the_customer_unowned_anchors_no_check_in() -> None:
    s, first = owned_by_alice()
    gone = s.depart(day(10), "alice")
    assert s.owner() is None
    assert s.status("check_in", first) == "cancelled"
    assert ("check_in", gone) not in s.latest()


def test_erasure_forgets_the_customers_follow_ups() -> None:
    s, _ = owned_by_alice()
    s.send(type="customer_erased", at=day(1), customer_id="c1")
    assert s.core.customer("c1") is None
    before = len(s.facts)
    s.touch(day(200), None, outcome="pending", topic="x")  # the customer again: a new relationship
    assert s.facts[before:] == []  # the erased check_in (due day 60) does not fall due


def test_a_late_owner_touch_is_applied_in_arrival_order() -> None:
    s, first = owned_by_alice()
    s.touch(day(50), None, outcome="pending", topic="x")
    late = s.touch(day(20), "alice", outcome="unresolved")  # arrives after day 50, happened on day 20
    assert s.status("check_in", first) == "cancelled"
    assert s.of("check_in", late).follow_up.due_at == day(20) + CHECK_IN


def test_an_owner_touch_that_also_changes_the_owner_leaves_one_check_in_for_the_new_owner() -> None:
    # Bob builds affinity; alice's own bad touch a month on lets him take over at that very touch.
    s, _ = owned_by_alice()
    for n in range(6):
        s.resolved(day(1, hours=n), "bob")
    touch = s.touch(day(40), "alice", csat=1, outcome="unresolved")
    assert s.owner() == "bob"
    check_in = s.of("check_in", touch)  # anchored twice at one event: the owner touch, then the change
    assert (check_in.status, check_in.follow_up.owner_id) == ("pending", "bob")


def test_live_the_streams_time_announces_a_due_follow_up_and_then_its_close() -> None:
    s = FollowUpScenario(announce=True)
    first = s.resolved(day(0), "alice")
    s.resolved(day(61), "bob", customer="c2")  # another customer's event moves the stream's time past day 60
    announced = s.core.follow_ups.announcements
    assert announced is not None
    assert [(a.status, a.follow_up.anchor_event_id, a.at) for a in announced] == [("open", first, day(61))]
    assert s.status("check_in", first) == "pending"  # by §8 it falls due on the customer's own next event
    touch = s.touch(day(62), "alice", outcome="resolved")
    assert [(a.status, a.event_id) for a in announced[1:]] == [("done", touch)]


def test_batch_announces_nothing() -> None:
    s, _ = owned_by_alice()
    s.resolved(day(61), "bob", customer="c2")
    assert s.core.follow_ups.announcements is None


def test_policy_numbers_set_the_due_times() -> None:
    s = FollowUpScenario(Policy(check_in_days=7, follow_up_after_hours=2))
    first = s.resolved(day(0), "alice")
    bad = s.touch(day(1), "bob", outcome="abandoned")
    assert s.of("check_in", first).follow_up.due_at == day(7)
    assert s.of("after_issue", bad).follow_up.due_at == day(1, hours=2)
