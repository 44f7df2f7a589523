"""The analysts' views (SPEC §7) of a replay against the same history counted plainly (tests/spec_model.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from schemas import Rejection, decode
from tests.event_streams import streams
from tests.replaying import rows, run_replay, write_jsonl
from tests.spec_model import SpecModel


def _rounded(table: set[tuple[object, ...]] | list[tuple[Any, ...]]) -> set[tuple[object, ...]]:
    """Floats to 9 places: DuckDB's averages and epochs against Python's."""
    return {tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in table}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        streams(customers=("c1", "c2"), max_events=50),
        # The views' windows exactly: 7 days (FCR), 90 (a journey's outcome), 180 (inactivity churn), in any order.
        streams(customers=("c1", "c2"), max_events=30, instants=(0, 0, 0, 7, 8, 90, 180)),
    )
)
def test_owner_history_journeys_customer_metrics_follow_ups_and_journey_outcomes_count_what_the_spec_counts(events: list[dict[str, Any]]) -> None:
    model = SpecModel()
    for body in events:
        event = decode(orjson.dumps(body))
        assert not isinstance(event, Rejection), event
        model.process(event)
    assume(not model.ambiguous)
    with tempfile.TemporaryDirectory() as tmp:
        db, _ = run_replay(Path(tmp), [write_jsonl(Path(tmp) / "in.jsonl", list(events))])
        owner_history = rows(
            db, "SELECT customer_id, owner_id, epoch(valid_from), epoch(valid_to), reason, event_id FROM owner_history"
        )
        journeys = rows(
            db,
            "SELECT journey_id, customer_id, journey_key, first_event_id, last_event_id, epoch(first_at), "
            "epoch(last_at), touches, handoffs, resolved, fcr FROM journeys",
        )
        metrics = rows(
            db,
            "SELECT customer_id, touches, employees_seen, owner_continuity, handoffs, silo_handoffs, repeat_contacts, "
            "epoch(first_seen), epoch(last_seen), churned, epoch(churned_at) FROM customer_metrics",
        )
        follow_ups = rows(
            db,
            "SELECT follow_up_id, customer_id, owner_id, kind, anchor_event_id, journey_id, epoch(due_at), status, "
            "epoch(closed_at), closed_event_id FROM follow_ups",
        )
        journey_outcomes = rows(
            db,
            "SELECT journey_id, customer_id, epoch(last_at), silo_handoffs, redirects, reexplained, ping_pongs, fcr, "
            "churned_within_window FROM journey_outcomes",
        )
    assert _rounded(owner_history) == _rounded(model.owner_history())
    assert _rounded(journeys) == _rounded(model.journeys())
    assert _rounded(metrics) == _rounded(model.customer_metrics())
    assert _rounded(follow_ups) == _rounded(model.follow_ups_view())
    assert _rounded(journey_outcomes) == _rounded(model.journey_outcomes())
