"""The ledger core against a plain reading of SPEC §3-§5 (tests/spec_model.py), on random histories.

The core keeps running affinities, a cached challenger and indexes; the model
recomputes everything from the touches.  After every event both must have decided
the same: each touch's journey, handoff, repeat, weight and owner match, and every
owner change with its reason, trigger and affinities; and the core's cached rule-2
challenger of every owned customer must be the one a full ranking names.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.core import LedgerCore
from ledger.relationship import OWNER_EVENTS
from tests.event_streams import streams
from tests.side_by_side import side_by_side
from tests.spec_model import Decision, SpecModel, TouchOutcome


def _core_outcome(fact: Any) -> TouchOutcome:
    repeat = (fact.repeat.previous_event_id, fact.repeat.gap_seconds) if fact.repeat is not None else None
    handoff = dataclasses.asdict(fact.handoff) if fact.handoff is not None else None
    return TouchOutcome(
        fact.journey_id, fact.journey_key, fact.weight, fact.owner_before, fact.owner_match, repeat, handoff
    )


def _core_decision(record: Any) -> Decision:
    event = record.event
    return Decision(
        record.customer_id, type(event).__name__, getattr(event, "previous_owner_id", None), event.owner_id,
        event.reason, pytest.approx(event.affinities, rel=1e-12),  # type: ignore[arg-type]  # compared with a tolerance
        event.trigger_event_id,
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        streams(customers=("c1", "c2"), max_events=60),  # long histories: windows, gaps, late events
        streams(customers=("c1",), max_events=40, instants=(0, 1, 40, 41, 80)),  # many touches share a time: ties
    )
)
def test_the_core_decides_what_the_spec_read_plainly_decides(events: list[dict[str, Any]]) -> None:
    core, model = LedgerCore(), SpecModel()
    for seq, body, event in side_by_side(events, core, model):
        decided = [r for r in core.ledger_records if isinstance(r.event, OWNER_EVENTS)]
        assert [_core_decision(r) for r in decided] == model.decisions, (seq, body)
        for fact in core.touch_facts:
            assert _core_outcome(fact) == model.touches[fact.touch.event_id], (seq, body)
        core.touch_facts, core.ledger_records = [], []
        model.decisions = []
        _assert_challengers_agree(core, model, event.occurred_at.timestamp())


def _assert_challengers_agree(core: LedgerCore, model: SpecModel, t: float) -> None:
    """Rule 2's challenger, which the core caches between touches, is who a full ranking names."""
    for customer_id, customer in core.customers.items():
        owner = customer.relationship.owner_id
        if owner is None:
            continue
        cached = core.rules.challenger(customer, t)
        ranked = model.best(model.customers[customer_id], t, exclude=owner)
        if model.ambiguous:
            return
        got = (cached.employee_id, cached.affinity) if cached is not None else None
        assert got == ((ranked[0], pytest.approx(ranked[1])) if ranked is not None else None), customer_id
