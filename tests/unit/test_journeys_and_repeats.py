"""SPEC §4 (journeys, handoffs) and §5 (repeat contacts), on the pure core."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledger.repeats import Repeat, RepeatIndex
from tests.scenario import Scenario, day

# Journeys.

def test_touches_with_a_case_id_form_one_journey_whatever_the_gap() -> None:
    s = Scenario()
    first = s.touch(day(0), "alice", case_id="T-1", outcome="resolved")
    later = s.touch(day(60), "bob", case_id="T-1", topic="billing.refund")
    other = s.touch(day(60), "bob", case_id="T-2")
    assert s.fact(later).journey_id == s.fact(first).journey_id == first
    assert s.fact(later).journey_key == "case:T-1"
    assert s.fact(other).journey_id == other


def test_topic_journey_stays_open_for_72_hours_after_its_last_unresolved_touch() -> None:
    s = Scenario()
    first = s.touch(day(0), "alice", topic="billing.refund", outcome="pending")
    within = s.touch(day(3), "alice", topic="billing.refund", outcome="pending")  # exactly 72 h
    assert s.fact(within).journey_id == first
    # The window runs from the journey's last touch, not its first.
    still = s.touch(day(6), "alice", topic="billing.refund", outcome="unresolved")
    assert s.fact(still).journey_id == first
    gone = s.touch(day(9, hours=1), "alice", topic="billing.refund")  # 73 h later
    assert s.fact(gone).journey_id == gone


def test_a_resolved_touch_closes_its_topic_journey() -> None:
    s = Scenario()
    first = s.touch(day(0), "alice", topic="order.status", outcome="resolved")
    again = s.touch(day(0, hours=1), "alice", topic="order.status")
    assert s.fact(again).journey_id == again != first


def test_touches_without_topic_share_the_general_journey_and_topics_are_separate() -> None:
    s = Scenario()
    a = s.touch(day(0), "alice")
    b = s.touch(day(1), "alice")
    c = s.touch(day(1), "alice", topic="device.setup")
    assert s.fact(b).journey_id == a
    assert s.fact(b).journey_key == "topic:general"
    assert s.fact(c).journey_id == c
    assert s.fact(c).journey_key == "topic:device.setup"


# Handoffs.

def test_same_person_same_department_is_no_handoff() -> None:
    s = Scenario()
    s.touch(day(0), "alice")
    second = s.touch(day(0, hours=1), "alice")
    bot = s.touch(day(0, hours=2), None, department="support")
    bot_again = s.touch(day(0, hours=3), None, department="support")
    assert s.fact(second).handoff is None
    assert s.fact(bot).handoff is not None  # alice -> nobody: the employee changed
    assert s.fact(bot_again).handoff is None  # null equals null


def test_handoff_kinds_and_flags() -> None:
    s = Scenario()
    a = s.touch(day(0), "alice", department="billing", outcome="transferred")
    b = s.touch(day(0, hours=1), "bob", department="accounting", outcome="redirected")
    c = s.touch(day(0, hours=5), "carl", department="billing", outcome="unresolved")
    d = s.touch(day(0, hours=6), "cora", department="billing")
    transfer, redirect, bounce = (s.fact(x).handoff for x in (b, c, d))
    assert transfer is not None and redirect is not None and bounce is not None
    assert (transfer.kind, redirect.kind, bounce.kind) == ("transfer", "redirect", "bounce")
    assert (transfer.from_event_id, transfer.to_event_id) == (a, b)
    assert (transfer.from_department, transfer.to_department) == ("billing", "accounting")
    assert (transfer.from_employee_id, transfer.to_employee_id) == ("alice", "bob")
    assert transfer.gap_seconds == 3600.0
    assert transfer.cross_department and transfer.reexplained and not transfer.ping_pong
    # billing -> accounting -> billing: back into a department the journey already saw.
    assert redirect.cross_department and redirect.ping_pong
    # Same department, another person: a handoff, not a silo handoff.
    assert not bounce.cross_department and bounce.reexplained and not bounce.ping_pong


def test_department_change_with_the_same_employee_is_a_silo_handoff_without_reexplaining() -> None:
    s = Scenario()
    s.touch(day(0), "alice", department="sales")
    moved = s.touch(day(0, hours=1), "alice", department="billing")
    handoff = s.fact(moved).handoff
    assert handoff is not None
    assert handoff.cross_department and not handoff.reexplained


def test_a_warm_transfer_passes_the_context_so_the_next_person_needs_no_re_explaining() -> None:
    s = Scenario()
    s.touch(day(0), "alice", department="billing", outcome="transferred", context_passed=True)
    warm = s.touch(day(0, hours=1), "bob", department="accounting", outcome="redirected", context_passed=True)
    redirected = s.touch(day(0, hours=2), "carl", department="support", outcome="transferred", context_passed=False)
    cold = s.touch(day(0, hours=3), "dana", department="billing")
    handoffs = [s.fact(x).handoff for x in (warm, redirected, cold)]
    assert all(h is not None and h.cross_department for h in handoffs)
    # Only a transfer carries context: a redirect with the flag, or a transfer without it, does not.
    assert [h.reexplained for h in handoffs if h is not None] == [False, True, True]
    assert [h.kind for h in handoffs if h is not None] == ["transfer", "redirect", "transfer"]


def test_ping_pong_needs_a_silo_handoff_back_into_a_department_seen_earlier() -> None:
    s = Scenario()
    s.touch(day(0), "a1", department="sales")
    s.touch(day(0, hours=1), "b1", department="billing")
    s.touch(day(0, hours=2), "b2", department="billing")  # bounce inside billing
    back = s.touch(day(0, hours=3), "a2", department="sales")
    third = s.touch(day(0, hours=4), "c1", department="returns")
    assert s.fact(back).handoff.ping_pong  # type: ignore[union-attr]
    assert not s.fact(third).handoff.ping_pong  # type: ignore[union-attr]


def test_touches_in_different_journeys_make_no_handoff() -> None:
    s = Scenario()
    s.touch(day(0), "alice", department="sales", topic="a")
    other = s.touch(day(0, hours=1), "bob", department="billing", topic="b")
    assert s.fact(other).handoff is None


# Repeat contacts.

def test_inbound_touch_within_seven_days_of_a_touch_with_the_same_key_repeats_it() -> None:
    s = Scenario()
    first = s.touch(day(0), "alice", topic="billing.refund", outcome="resolved")
    second = s.touch(day(2), "bob", topic="billing.refund", outcome="resolved")
    third = s.touch(day(9), "bob", topic="billing.refund")  # exactly 7 days after the second
    repeat2, repeat3 = s.fact(second).repeat, s.fact(third).repeat
    assert repeat2 is not None and repeat2.previous_event_id == first
    assert repeat3 is not None and repeat3.previous_event_id == second  # the latest earlier one
    assert repeat3.gap_seconds == 7 * 86400
    late = s.touch(day(16, hours=1), "bob", topic="billing.refund")
    assert s.fact(late).repeat is None


def test_outbound_touches_and_other_keys_are_not_repeats() -> None:
    s = Scenario()
    s.touch(day(0), "alice", case_id="T-1")
    outbound = s.touch(day(1), "alice", case_id="T-1", direction="outbound")
    other_key = s.touch(day(1), "alice", case_id="T-2")
    topic_only = s.touch(day(1), "alice", topic="T-1")
    assert s.fact(outbound).repeat is None
    assert s.fact(other_key).repeat is None
    assert s.fact(topic_only).repeat is None
    # The outbound touch still counts as an earlier touch for the next inbound one.
    follow = s.touch(day(2), "alice", case_id="T-1")
    assert s.fact(follow).repeat.previous_event_id == outbound  # type: ignore[union-attr]


def test_the_receiving_leg_of_a_transfer_is_not_a_repeat_but_after_a_redirect_it_is() -> None:
    s = Scenario()
    s.touch(day(0), "alice", department="billing", outcome="transferred")
    leg = s.touch(day(0, hours=1), "bob", department="accounting")
    assert s.fact(leg).repeat is None
    s2 = Scenario()
    s2.touch(day(0), "alice", department="billing", outcome="redirected")
    again = s2.touch(day(0, hours=1), "bob", department="accounting")
    assert s2.fact(again).repeat is not None


def test_a_transfer_outside_the_journey_window_is_a_new_contact() -> None:
    s = Scenario()
    s.touch(day(0), "alice", outcome="transferred")
    later = s.touch(day(4), "bob")  # 96 h: a new journey, so no transfer leg, and within 7 days
    assert s.fact(later).journey_id == later
    assert s.fact(later).repeat is not None


def test_a_late_touch_repeats_an_earlier_touch_however_long_ago_a_newer_one_arrived() -> None:
    s = Scenario()
    first = s.touch(day(0), "alice", case_id="T-1", outcome="resolved")
    s.touch(day(30), "bob", case_id="T-1", direction="outbound")  # far newer: day 0 no longer matters in order
    late = s.touch(day(5), "carol", case_id="T-1")  # arrives now, happened 5 days after the first
    assert s.fact(late).repeat == Repeat(first, 5 * 86400.0)
    later_late = s.touch(day(5), "dave", case_id="T-1")  # same instant: the one that arrived last is previous
    assert s.fact(later_late).repeat == Repeat(late, 0.0)
    too_late = s.touch(day(-1), "erin", case_id="T-1")  # nothing of this key at or before it
    assert s.fact(too_late).repeat is None


@st.composite
def touch_streams(draw: st.DrawFn) -> list[tuple[str, float, bool]]:
    """Touches of one customer in arrival order: key, time (late ones and ties included), inbound."""
    times = st.integers(0, 40).map(lambda half_days: half_days * 43200.0)
    return draw(st.lists(st.tuples(st.sampled_from(["case:a", "case:b", "topic:general"]), times, st.booleans())))


@given(touch_streams())
def test_repeat_index_finds_what_a_scan_of_every_earlier_arrival_finds(stream: list[tuple[str, float, bool]]) -> None:
    """SPEC §5 read plainly: the latest touch that arrived earlier, at or before t, at most 7 days before it."""
    week = 7 * 86400.0
    index = RepeatIndex()
    for n, (key, t, inbound) in enumerate(stream):
        expected = None
        for m in range(n):  # ties on time: the later arrival wins, so >=
            k, tm, _ = stream[m]
            if k == key and tm <= t and t - tm <= week and (expected is None or tm >= stream[expected][1]):
                expected = m
        got = index.observe(key, t, f"e{n}", may_repeat=inbound, window_seconds=week)
        want = Repeat(f"e{expected}", t - stream[expected][1]) if inbound and expected is not None else None
        assert got == want, (n, stream[: n + 1])
