"""Property-based: replay is deterministic, idempotent under duplicated delivery,
and partitioning customers (as Kafka does) does not change any customer's results."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.core import LedgerCore
from ledger.records import Position
from schemas import BROADCAST_TYPES, Rejection, decode
from tests.event_streams import CUSTOMERS, streams
from tests.replaying import run_replay, snapshot, write_jsonl

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(streams(), st.data())
def test_replay_is_deterministic_and_idempotent_under_duplicated_delivery(events: list[dict[str, Any]], data: st.DataObject) -> None:
    # Redeliver some events later in the stream, as an at-least-once producer would.
    redelivered = list(events)
    for index in data.draw(st.lists(st.integers(0, len(events) - 1), max_size=10)):
        # A copy arrives after the first delivery (else it would be a reordering, not a redelivery).
        first_delivery = next(i for i, e in enumerate(redelivered) if e is events[index])
        later = data.draw(st.integers(first_delivery + 1, len(redelivered)))
        redelivered.insert(later, events[index])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        once = write_jsonl(root / "once.jsonl", events)
        twice = write_jsonl(root / "twice.jsonl", redelivered)
        first, _ = run_replay(root, [once], name="first")
        second, _ = run_replay(root, [once], name="second")
        duplicated, summary = run_replay(root, [twice], name="duplicated")
        assert summary.duplicates == len(redelivered) - len(events)
        assert snapshot(first) == snapshot(second) == snapshot(duplicated)


def _facts_by_customer(batches: list[list[bytes]]) -> dict[str, list[Any]]:
    """Run each batch (a partition) through its own core; collect every fact per customer."""
    facts: dict[str, list[Any]] = {}
    for lines in batches:
        core = LedgerCore()
        for offset, raw in enumerate(lines):
            event = decode(raw)
            assert not isinstance(event, Rejection)
            core.process(event, Position("p", offset, offset))
        for f in core.touch_facts:
            facts.setdefault(f.touch.customer_id, []).append(
                ("touch", f.touch.event_id, f.journey_id, f.owner_before, f.owner_match, f.repeat, f.handoff)
            )
        for r in core.ledger_records:
            payload = {k: v for k, v in r.event.__dict__.items() if k != "originator_topic"}
            facts.setdefault(r.customer_id, []).append(("ledger", type(r.event).__name__, payload))
        for e in core.erasures:
            facts.setdefault(e.customer_id, []).append(("erased", e.relationship_id))
    return facts


@settings(max_examples=200, deadline=None)
@given(streams(), st.integers(2, 3))
def test_partitioning_customers_gives_every_customer_the_same_results(events: list[dict[str, Any]], partitions: int) -> None:
    lines = [orjson.dumps(e) for e in events]
    split: list[list[bytes]] = [[] for _ in range(partitions)]
    for event, line in zip(events, lines):
        if event.get("type") in BROADCAST_TYPES:
            for partition in split:  # broadcast: every partition applies it where it reads it
                partition.append(line)
        else:
            split[CUSTOMERS.index(event["customer_id"]) % partitions].append(line)
    assert _facts_by_customer([lines]) == _facts_by_customer(split)
