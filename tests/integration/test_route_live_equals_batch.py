"""SPEC §9: the route the core keeps (what the worker answers) equals `spoc route` over the analytics
file of the same history, for every customer of random histories."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from ledger.core import LedgerCore
from ledger.records import Position
from schemas import Rejection, decode
from spoc.route_lookup import route_at
from tests.event_streams import streams
from tests.replaying import run_replay, write_jsonl


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(customers=("c1", "c2"), max_events=40))
def test_the_cores_route_equals_the_batch_route(events: list[dict[str, Any]]) -> None:
    core = LedgerCore()
    for seq, body in enumerate(events):
        event = decode(orjson.dumps(body))
        assert not isinstance(event, Rejection), event
        core.process(event, Position("in.jsonl", seq, seq))
    with tempfile.TemporaryDirectory() as tmp:
        db, _ = run_replay(Path(tmp), [write_jsonl(Path(tmp) / "in.jsonl", events)])
        for customer_id in ("c1", "c2"):
            live = core.route_of(customer_id)
            found = route_at(db, customer_id, None)
            assert (live is None) == (found is None), customer_id
            if live is None or found is None:
                continue
            batch = found[1]
            assert (live.owner, live.owner_available, live.route_to, live.department) == (
                batch.owner, batch.owner_available, batch.route_to, batch.department
            )
            assert [(c.employee_id, c.score) for c in live.candidates] == [(c.employee_id, c.score) for c in batch.candidates]
            assert [c.affinity for c in live.candidates] == pytest.approx([c.affinity for c in batch.candidates], rel=1e-9)
