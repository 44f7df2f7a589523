"""The policy's ``late_event_horizon_days``: bounded touch history, and exact decisions for events within it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from ledger import affinity, repeats
from ledger.core import LedgerCore
from ledger.policy import Policy
from ledger.records import Position
from ledger.relationship import OWNER_EVENTS
from schemas import Rejection, Touchpoint, decode
from tests.event_streams import streams
from tests.scenario import T0
from tests.unit.test_core_against_spec_model import _core_outcome

LATEST_LATE_HOURS = 24 * 9
"""The most ``streams`` puts an event behind the ones before it."""


def _decisions(core: LedgerCore) -> list[tuple[Any, ...]]:
    return [
        (r.customer_id, type(r.event).__name__, r.event.owner_id, r.event.reason, r.event.trigger_event_id, r.event.affinities)
        for r in core.ledger_records if isinstance(r.event, OWNER_EVENTS)
    ]


def _affinities(core: LedgerCore, t: float) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """Every affinity at ``t``, and its latest touch at or before ``t``: what rules 2 and 3 rank by."""
    half_life = core.policy.half_life_seconds
    pairs = [((c, e), a) for c, customer in core.customers.items() for e, a in customer.affinities.items()]
    return {k: a.at(t, half_life) for k, a in pairs}, {k: a.last_touch_at_or_before(t) for k, a in pairs}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(customers=("c1",), max_events=60))
def test_events_within_the_horizon_are_judged_as_with_all_history_kept(events: list[dict[str, Any]]) -> None:
    exact = LedgerCore(Policy())
    within = LedgerCore(Policy(late_event_horizon_days=LATEST_LATE_HOURS / 24))  # no event is later than this
    beyond = LedgerCore(Policy(late_event_horizon_days=0.5))
    with pytest.MonkeyPatch.context() as patch:  # fold and forget from the second touch on, not the fourth
        patch.setattr(affinity, "_FOLD_FROM", 4)
        patch.setattr(repeats, "_FORGET_FROM", 2)
        for seq, body in enumerate(events):
            event = decode(orjson.dumps(body))
            assert not isinstance(event, Rejection), event
            for core in (exact, within, beyond):
                core.process(event, Position("stream", seq, seq))
            assert [_core_outcome(f) for f in within.touch_facts] == [_core_outcome(f) for f in exact.touch_facts]
            assert [d[:-1] for d in _decisions(within)] == [d[:-1] for d in _decisions(exact)]
            assert [d[-1] for d in _decisions(within)] == [pytest.approx(d[-1], rel=1e-12) for d in _decisions(exact)]
            t = event.occurred_at.timestamp()
            (values, latest), (exact_values, exact_latest) = _affinities(within, t), _affinities(exact, t)
            assert (values, latest) == (pytest.approx(exact_values, rel=1e-12), exact_latest)
            assert len(beyond.touch_facts) == len(exact.touch_facts)  # later events still processed, by what is kept
            for core in (exact, within, beyond):
                core.touch_facts, core.ledger_records = [], []


def _touch(n: int, days: float) -> Touchpoint:
    event = decode(orjson.dumps({
        "event_id": f"t{n}", "occurred_at": (T0 + timedelta(days=days)).isoformat(), "customer_id": "c1",
        "channel": "phone", "direction": "inbound", "department": "billing", "employee_id": "alice",
        "topic": "refund", "outcome": "pending",
    }))
    assert isinstance(event, Touchpoint)
    return event


@pytest.mark.parametrize(("horizon_days", "kept"), [(None, range(3000, 3001)), (30.0, range(15, 64))])
def test_a_horizon_bounds_the_history_a_customer_keeps(horizon_days: float | None, kept: range) -> None:
    """A touch every 2 days for 6000 days: without a horizon all 3000 are kept; with 30 days, those
    within it (15, and the 7-day repeat window's 4 more) and at most as many again before the next fold."""
    core = LedgerCore(Policy(late_event_horizon_days=horizon_days))
    for n in range(3000):
        core.process(_touch(n, 2 * n), Position("f", n, n))
    customer = core.customer("c1")
    assert customer is not None
    history = customer.affinities["alice"].history
    key = customer.repeats.by_key["topic:refund"]
    assert history is not None and not isinstance(key, tuple)
    assert len(history) // 2 in kept and len(key.times) in kept and len(key.event_ids) == len(key.times)
