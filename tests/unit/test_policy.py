"""How a policy is recorded and compared (the DuckDB file, the ledger store and the sink all use it)."""

from __future__ import annotations

from ledger.policy import DEFAULT_POLICY, Policy


def test_a_number_given_as_an_integer_is_the_same_policy_as_its_float() -> None:
    recorded = Policy(repeat_window_days=2.0).as_recorded()
    assert Policy(repeat_window_days=2).changes_from(recorded) == []
    assert recorded["repeat_window_days"] == "2.0"
    assert Policy(repeat_window_days=2.0).changes_from({"repeat_window_days": "2"}) == []  # a record written from 2
    assert Policy(repeat_window_days=2.0).changes_from({"repeat_window_days": 2}) == []  # the ledger store's numbers


def test_every_changed_number_is_named_with_its_recorded_and_new_value() -> None:
    recorded = Policy(repeat_window_days=7, late_event_horizon_days=30).as_recorded()
    assert Policy(repeat_window_days=3).changes_from(recorded) == [
        "repeat_window_days 7.0 → 3.0",
        "late_event_horizon_days 30.0 → None",
    ]


def test_a_key_missing_from_a_record_counts_as_its_default() -> None:
    recorded = DEFAULT_POLICY.as_recorded()
    del recorded["late_event_horizon_days"]
    assert DEFAULT_POLICY.changes_from(recorded) == []
    assert Policy(late_event_horizon_days=30).changes_from(recorded) == ["late_event_horizon_days None → 30.0"]
