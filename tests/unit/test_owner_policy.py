"""SPEC §3: weights, affinity, and the five owner rules, one scenario each."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ledger.affinity import Affinity, touch_weight
from ledger.relationship import Relationship
from schemas import Touchpoint
from tests.scenario import T0, Scenario, day
from tests.spec_model import Customer as ModelCustomer
from tests.spec_model import SpecModel
from tests.spec_model import Touch as ModelTouch

H = 180 * 86400.0


def _touchpoint(**fields: object) -> Touchpoint:
    base = {"event_id": "e", "occurred_at": T0, "customer_id": "c", "channel": "phone", "direction": "inbound",
                "department": "support", "employee_id": "alice"}
    base.update(fields)
    return Touchpoint(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "weight"),
    [
        ({"outcome": "resolved"}, 1.0),
        ({"kind": "purchase"}, 1.0),
        ({"csat": 4}, 1.0),
        ({"csat": 5, "outcome": "transferred"}, 1.0),  # productive beats no-connection
        ({"outcome": "transferred"}, 0.0),
        ({"outcome": "redirected"}, 0.0),
        ({"outcome": "abandoned"}, 0.0),
        ({"outcome": "unresolved"}, 0.2),
        ({"outcome": "pending"}, 0.2),
        ({}, 0.2),
        ({"csat": 3}, 0.2),
        ({"outcome": "resolved", "csat": 2}, 0.5),
        ({"outcome": "resolved", "csat": 1}, 0.5),
        ({"outcome": "transferred", "csat": 2}, -0.5),
        ({"outcome": "unresolved", "csat": 1}, pytest.approx(-0.3)),
    ],
)
def test_touch_weight(fields: dict[str, object], weight: float) -> None:
    assert touch_weight(_touchpoint(**fields)) == weight


def test_affinity_halves_every_half_life_and_sums_touches() -> None:
    affinity = Affinity()
    affinity.add(0.0, 1.0, H)
    assert affinity.at(H, H) == 0.5
    affinity.add(H, 1.0, H)
    assert affinity.at(H, H) == 1.5
    assert affinity.at(2 * H, H) == 0.75


def test_affinity_of_a_late_event_counts_only_touches_at_or_before_it() -> None:
    affinity = Affinity()
    affinity.add(0.0, 1.0, H)
    affinity.add(2 * H, 1.0, H)
    # Asked at time H (a late event): the touch at 2H has not happened yet.
    assert affinity.at(H, H) == 0.5
    assert affinity.last_touch_at_or_before(H) == 0.0


def test_a_single_touch_is_its_own_history() -> None:
    affinity = Affinity()
    affinity.add(2 * H, 1.0, H)
    assert affinity.at(H, H) == 0 and affinity.last_touch_at_or_before(H) == float("-inf")
    assert affinity.at(3 * H, H) == 0.5 and affinity.last_touch_at_or_before(3 * H) == 2 * H
    # A late second touch: the first is still seen at its own time, and only there.
    affinity.add(0.0, 0.2, H)
    assert affinity.at(H, H) == 0.1 and affinity.last_touch_at_or_before(H) == 0.0
    assert affinity.at(2 * H, H) == 1.05


# Rule 1: first assignment.

def test_first_productive_touch_assigns_its_employee() -> None:
    s = Scenario()
    # An engaged but unresolved call does not make an owner.
    s.touch(day(0), "alice", outcome="unresolved")
    assert s.owner() is None
    # A self-service resolution does not either: only touches with an employee count.
    s.resolved(day(1), None)
    assert s.owner() is None
    # Bob resolves the issue: he is the customer's person.
    trigger = s.resolved(day(2), "bob")
    assert s.owner() == "bob"
    [assigned] = s.owner_changes()
    assert isinstance(assigned, Relationship.OwnerAssigned)
    assert (assigned.reason, assigned.trigger_event_id) == ("first_productive_contact", trigger)
    assert assigned.timestamp == day(2)
    assert assigned.affinities == {"bob": 1.0}


@pytest.mark.parametrize("fields", [{"kind": "purchase"}, {"csat": 4}])
def test_purchase_or_good_csat_is_productive(fields: dict[str, Any]) -> None:
    s = Scenario()
    s.touch(day(0), "alice", **fields)
    assert s.owner() == "alice"


# Rule 2: stability.

def test_challenger_needs_double_and_two_more_than_the_owner() -> None:
    s = Scenario()
    s.resolved(day(0), "alice")
    # 180 days later Alice's affinity has halved to 0.5; the bar is max(2*0.5, 0.5+2) = 2.5.
    s.resolved(day(180), "bob")
    s.resolved(day(180), "bob")
    s.touch(day(180), "bob", outcome="unresolved")  # 2.2: double, but not +2
    assert s.owner() == "alice"
    s.resolved(day(180), "carol")
    s.resolved(day(180), "carol")
    s.resolved(day(180), "carol", csat=1)  # 1 + 1 + 0.5 = 2.5: exactly the bar
    assert s.owner() == "carol"
    changed = s.owner_changes()[-1]
    assert isinstance(changed, Relationship.OwnerChanged)
    assert (changed.previous_owner_id, changed.owner_id, changed.reason) == ("alice", "carol", "affinity")
    assert changed.affinities == {"carol": 2.5, "alice": 0.5}


def test_ratio_alone_is_not_enough_when_affinities_are_small() -> None:
    s = Scenario()
    s.touch(day(0), "alice", csat=4)
    s.touch(day(40), "bob", outcome="unresolved")
    for _n in range(5):
        s.touch(day(40), "bob", outcome="pending")  # 1.2 > 2 * 0.86, but not 0.86 + 2
    assert s.owner() == "alice"


def test_no_change_within_thirty_days_of_the_last_change() -> None:
    s = Scenario()
    s.resolved(day(0), "alice")
    for _ in range(5):
        s.resolved(day(29), "bob")
    assert s.owner() == "alice"  # Bob dominates, but it is too soon.
    # Any later event of the customer re-evaluates the rules: here a self-service visit.
    s.touch(day(30), None, channel="portal")
    assert s.owner() == "bob"
    assert s.owner_changes()[-1].timestamp == day(30)


def test_the_thirty_day_gap_runs_from_the_last_change_not_the_first() -> None:
    s = Scenario()
    s.resolved(day(0), "alice")
    for _ in range(4):
        s.resolved(day(40), "bob")
    assert s.owner() == "bob"  # changed on day 40
    for _ in range(12):
        s.resolved(day(60), "carol")
    assert s.owner() == "bob"  # day 60 is only 20 days after the change
    s.touch(day(70), None)
    assert s.owner() == "carol"


def test_equal_challengers_go_to_the_lower_employee_id() -> None:
    s = Scenario()
    s.resolved(day(0), "alice")
    # Too soon to change on day 29: zed and bob build up identical affinity at the same instant.
    for employee in ("zed", "bob"):
        for _ in range(3):
            s.resolved(day(29), employee)
    s.touch(day(30), None)  # the next event re-evaluates: a perfect tie
    assert s.owner() == "bob"


def test_equal_challengers_go_to_the_most_recent_touch_first() -> None:
    s = Scenario()
    s.resolved(day(0), "alice")
    for employee in ("zed", "bob"):
        for _ in range(3):
            s.resolved(day(29), employee)
    # A transferred call adds nothing to zed's affinity but makes his last touch the latest.
    s.touch(day(29, hours=6), "zed", outcome="transferred")
    s.touch(day(30), None)
    assert s.owner() == "zed"


def test_a_first_touch_below_zero_can_be_the_challenger_of_an_owner_far_below_zero() -> None:
    # A(alice) = 0.885 - 3.3 ~ -2.42, so the bar is max(2 * -2.42, -2.42 + 2) ~ -0.42.
    s = Scenario()
    s.resolved(day(0), "alice")
    for hour in range(6):
        s.touch(day(31, hours=hour), "alice", outcome="abandoned", csat=1)  # -0.5 each
    s.touch(day(31, hours=6), "alice", outcome="pending", csat=1)  # -0.3
    s.touch(day(31, hours=8), None)  # rule 2 runs: nobody else yet
    s.touch(day(32), "carl", outcome="abandoned", csat=1)  # -0.5: under the bar
    assert s.owner() == "alice"
    s.touch(day(32, hours=1), "bob", outcome="pending", csat=1)  # -0.3: above carl and the bar
    assert s.owner() == "bob"  # the cached challenger stayed carl until 2026-11-24


def test_tie_break_prefers_most_recent_touch_then_lowest_id() -> None:
    from ledger.ownership import best_candidate

    affinities: dict[str, Affinity] = {}
    for employee, t in (("bob", 10.0), ("amy", 10.0), ("cat", 20.0)):
        affinities[employee] = Affinity()
        affinities[employee].add(t, 1.0, H)
    # Equal affinities at the same instant are impossible with decay unless touched at the
    # same time, so compare amy and bob (same time) and then add cat, more recent but decayed less.
    best = best_candidate({k: affinities[k] for k in ("bob", "amy")}, 30.0, H, exclude=None, departed=set())
    assert best is not None and best.employee_id == "amy"
    same = Affinity()
    same.add(10.0, 1.0, H)
    best = best_candidate({"bob": affinities["bob"], "dan": same}, 30.0, H, exclude=None, departed=set())
    assert best is not None and best.employee_id == "bob"
    best = best_candidate(affinities, 30.0, H, exclude=None, departed={"cat"})
    assert best is not None and best.employee_id == "amy"
    best = best_candidate(affinities, 30.0, H, exclude="amy", departed=set())
    assert best is not None and best.employee_id == "cat"


@pytest.mark.parametrize("hours_later", range(1, 200, 7))
def test_a_touch_of_weight_zero_keeps_a_tie_and_makes_its_employee_the_most_recent(hours_later: int) -> None:
    # The SPEC's sums: A(alice) = A(bob) exactly (bob's abandoned call adds 0), and bob's
    # touch is the more recent, so bob succeeds. Kept as running values the two sums can
    # differ in their last bit (a third of these times did, before affinities within 1e-9
    # counted as equal), and the tie went to whichever rounded up.
    s = Scenario()
    s.resolved(day(0), "carol")
    s.resolved(day(1), "alice")
    s.resolved(day(1), "bob")
    s.touch(day(1, hours=hours_later), "bob", outcome="abandoned")
    s.depart(day(20), "carol")
    assert s.owner() == "bob"


@pytest.mark.parametrize("hours_later", range(1, 200, 7))
def test_a_challenger_exactly_at_the_bar_wins_whatever_touches_of_weight_zero_the_owner_had(hours_later: int) -> None:
    s = Scenario()
    for _ in range(3):
        s.resolved(day(0), "alice")  # alice owns, A = 3x
    for _ in range(6):
        s.resolved(day(0), "bob")  # A = 6x = max(2 * 3x, 3x + 2) while x >= 2/3 (the first 105 days)
    s.touch(day(0, hours=hours_later), "alice", outcome="abandoned")  # adds 0
    s.touch(day(31), None)
    assert s.owner() == "bob"


DAYS = (0.0, 0.0, 1.0, 2.0, 40.0)
WEIGHTS = (1.0, 0.5, 0.2, 0.0, -0.3, -0.5)


@given(
    st.lists(st.tuples(st.sampled_from(("amy", "bob", "cat")), st.sampled_from(DAYS), st.sampled_from(WEIGHTS)),
             min_size=1, max_size=12),
    st.sampled_from(DAYS),
)
def test_candidates_rank_as_the_spec_sums_rank_them(touches: list[tuple[str, float, float]], at: float) -> None:
    """Running affinities (touches in any time order) rank as tests/spec_model.py's fresh sums do."""
    from ledger.ownership import best_candidate

    affinities: dict[str, Affinity] = {}
    model, customer = SpecModel(), ModelCustomer()
    for employee, touched, weight in touches:
        affinities.setdefault(employee, Affinity()).add(touched * 86400.0, weight, H)
        customer.touches.append(ModelTouch("e", touched * 86400.0, employee, weight, "topic:general", "j", None, "x"))
    best = best_candidate(affinities, at * 86400.0, H, exclude=None, departed=set())
    expected = model.best(customer, at * 86400.0, exclude=None)
    assume(not model.ambiguous)
    assert (best.employee_id, best.affinity) == (expected[0], pytest.approx(expected[1])) if best else expected is None


# Rule 3: departure.

def test_departure_hands_customers_to_the_active_employee_with_highest_affinity() -> None:
    s = Scenario()
    s.resolved(day(0), "alice")
    s.touch(day(1), "bob", outcome="unresolved")
    s.resolved(day(2), "carol", department="billing")
    trigger = s.depart(day(3), "alice")
    assert s.owner() == "carol"
    changed = s.owner_changes()[-1]
    assert (changed.previous_owner_id, changed.reason, changed.trigger_event_id) == ("alice", "owner_departed", trigger)
    assert changed.timestamp == day(3)


def test_departure_without_a_positive_successor_leaves_the_customer_unowned() -> None:
    s = Scenario()
    s.resolved(day(0), "alice")
    s.touch(day(1), "bob", outcome="transferred")  # weight 0: no connection made
    s.touch(day(1), "dan", outcome="transferred", csat=1)  # negative
    s.depart(day(2), "alice")
    assert s.owner() is None
    assert s.owner_changes()[-1].reason == "owner_departed_unassigned"
    # Rule 1 applies again at the next productive touch, gap or not.
    s.resolved(day(3), "bob")
    assert s.owner() == "bob"
    assert s.owner_changes()[-1].reason == "first_productive_contact"
    assert isinstance(s.owner_changes()[-1], Relationship.OwnerChanged)  # not the first owner ever


def test_a_departed_employee_never_becomes_an_owner_again() -> None:
    s = Scenario()
    s.resolved(day(0), "alice")
    s.depart(day(1), "alice")
    s.resolved(day(2), "alice")  # stale data from the old desk
    assert s.owner() is None
    for _ in range(10):
        s.resolved(day(100), "alice")
    s.resolved(day(101), "bob")
    assert s.owner() == "bob"
    s.pin(day(200), "alice")
    assert s.owner() == "bob"
    assert s.ledger_types()[-1] == "PinRefused"


def test_departure_reaches_every_customer_the_employee_owns() -> None:
    s = Scenario()
    for customer in ("c1", "c2", "c3"):
        s.resolved(day(0), "alice", customer=customer)
    s.resolved(day(1), "bob", customer="c2")
    s.resolved(day(1), "zoe", customer="c3")
    s.resolved(day(1), "bob", customer="c4")
    s.depart(day(2), "alice")
    assert [s.owner(c) for c in ("c1", "c2", "c3", "c4")] == [None, "bob", "zoe", "bob"]


# Rule 4: pinning.

def test_pin_sets_the_owner_at_once_and_suspends_rules_one_and_two() -> None:
    s = Scenario()
    s.resolved(day(0), "alice")
    s.pin(day(1), "dora")
    assert (s.owner(), s.pinned()) == ("dora", True)
    assert s.owner_changes()[-1].reason == "pinned"
    for _ in range(10):
        s.resolved(day(100), "bob")
    assert s.owner() == "dora"  # Bob dominates, but the pin holds.
    s.unpin(day(101))
    # Unpinning is an event of the customer: the rules run at once.
    assert s.owner() == "bob"
    assert s.owner_changes()[-1].timestamp == day(101)


def test_pin_on_a_customer_without_owner_is_their_first_assignment() -> None:
    s = Scenario()
    s.pin(day(0), "dora")
    assert s.owner() == "dora"
    assert isinstance(s.owner_changes()[0], Relationship.OwnerAssigned)
    s.resolved(day(1), "bob")  # rule 1 is suspended too (and there is an owner)
    assert s.owner() == "dora"


def test_pinning_the_current_owner_changes_nothing_but_the_pin() -> None:
    s = Scenario()
    s.resolved(day(0), "alice")
    s.pin(day(5), "alice")
    assert len(s.owner_changes()) == 1
    assert s.ledger_types() == ["Opened", "OwnerAssigned", "Pinned"]
    # The pin did not reset the 30-day clock: no owner change happened.
    s.unpin(day(35))
    for _ in range(4):
        s.resolved(day(35), "bob")
    assert s.owner() == "bob"


def test_a_pinned_owner_who_departs_is_replaced_and_the_pin_ends() -> None:
    s = Scenario()
    s.resolved(day(0), "alice")
    s.pin(day(1), "dora")
    s.depart(day(2), "dora")
    assert (s.owner(), s.pinned()) == ("alice", False)
    assert s.owner_changes()[-1].reason == "owner_departed"
    for _ in range(5):
        s.resolved(day(40), "bob")
    assert s.owner() == "bob"  # rule 2 works again


# Continuity bookkeeping (§6) lives in the touch facts.

def test_continuity_counts_touches_after_the_first_owner_handled_by_the_owner_in_place() -> None:
    s = Scenario()
    before = s.touch(day(0), "bob", outcome="unresolved")
    first = s.resolved(day(1), "alice")
    same = s.touch(day(2), "alice")
    other = s.touch(day(3), "bob")
    bot = s.touch(day(4), None)
    assert s.fact(before).owner_match is None  # no owner yet
    assert s.fact(first).owner_match is None  # the assigning touch came before any owner
    assert s.fact(same).owner_match is True
    assert s.fact(other).owner_match is False
    assert s.fact(bot).owner_match is None  # not employee-handled


# Rule 5: erasure.

def test_erasure_forgets_the_customer_and_a_return_starts_a_new_relationship() -> None:
    s = Scenario()
    s.resolved(day(0), "alice")
    old = s.core.customer("c1")
    assert old is not None
    s.send(type="customer_erased", at=day(1), customer_id="c1")
    assert s.core.customer("c1") is None
    [erasure] = s.core.erasures
    assert (erasure.customer_id, erasure.relationship_id) == ("c1", old.relationship.id)
    s.resolved(day(2), "bob")
    new = s.core.customer("c1")
    assert new is not None and new.relationship.id != old.relationship.id
    assert s.owner() == "bob"
