"""The live worker's resume logic, without a broker: a crash anywhere loses and doubles nothing."""

from __future__ import annotations

import itertools
from collections import defaultdict

import orjson
import pytest

from benchmarks.workload import generate
from ledger.policy import DEFAULT_POLICY
from processors.kafka.marks import KEY_STORE_HEADER, POLICY_HEADER, Mark
from processors.kafka.reading import Incoming
from processors.kafka.routing import routing
from processors.kafka.topics import FACTS, OUTPUT_TOPICS, TOUCHPOINTS
from processors.live.outputs import facts_messages
from processors.live.partition import Effects, PartitionLedger


def _messages(count: int) -> list[Incoming]:
    lines = generate(count, customers=count // 6, seed=3, dirty=0.03)
    return [Incoming(offset, routing(raw)[0], raw, False, None) for offset, raw in enumerate(lines)]


def _fresh(recorded: int | None = None, tails: dict[str, Mark | None] | None = None) -> PartitionLedger:
    return PartitionLedger(TOUCHPOINTS, 0, DEFAULT_POLICY, recorded, tails or dict.fromkeys(OUTPUT_TOPICS))


def _by_topic(effects: Effects) -> dict[str, list[object]]:
    """Each topic's messages in order; facts as the flat list of per-input-message facts (unsealed)."""
    topics: dict[str, list[object]] = defaultdict(list)
    for out in effects.outgoing:
        topics[out.topic].append((out.key, out.value, out.mark))
    if effects.facts:
        topics[FACTS].extend(effects.facts)
    return dict(topics)


@pytest.mark.parametrize("cut", [1, 137, 400, 599])
def test_a_restart_after_any_message_makes_exactly_the_missing_effects(cut: int) -> None:
    messages = _messages(600)
    whole = _fresh().process(messages)

    before = _fresh()
    first = before.process(messages[:cut])
    before.done(first)
    # A new process: fresh state, the store's position and the topics' tails as the first one left them.
    after = _fresh(before.recorded, dict(before.tails))
    rest = after.process(messages)

    assert [r.event for r in first.records + rest.records] == [r.event for r in whole.records]
    combined = _by_topic(first)
    for topic, items in _by_topic(rest).items():
        combined.setdefault(topic, []).extend(items)
    assert combined == _by_topic(whole)
    assert whole.rejected and whole.records


def test_a_crash_between_store_and_publish_republishes_without_restoring() -> None:
    messages = _messages(300)
    whole = _fresh().process(messages)
    # The ledger store holds everything, the topics nothing: only outputs are made again.
    again = _fresh(recorded=messages[-1].offset).process(messages)
    assert again.records == []
    assert _by_topic(again) == _by_topic(whole)
    assert whole.facts  # the sink's facts (compared above), to be sealed


def test_facts_chunks_are_marked_with_their_last_input_message_and_the_policy() -> None:
    big = orjson.dumps({"touch": "x" * 200_000})
    facts = [(offset, big) for offset in range(10)]
    chunks = facts_messages(facts, b'{"repeat_window_days":2.0}', "store-1")
    assert len(chunks) > 1
    assert [c.mark for c in chunks][-1] == (9, 0)
    assert sum(len(orjson.loads(c.value)) for c in chunks) == 10
    assert all(c.mark[0] < d.mark[0] for c, d in itertools.pairwise(chunks))
    assert all(dict(c.headers)[POLICY_HEADER] == b'{"repeat_window_days":2.0}' for c in chunks)
    assert all(dict(c.headers)[KEY_STORE_HEADER] == b"store-1" for c in chunks)


def test_a_rebuild_in_chunks_writes_each_customers_last_owner_once_and_never_an_erased_one() -> None:
    lines = list(generate(900, customers=60, seed=11, dirty=0.0))
    def customer(raw: bytes) -> str:
        return (routing(raw)[0] or b"").decode()

    erased = customer(lines[10])
    erasure = orjson.dumps({"type": "customer_erased", "event_id": "erase-1", "occurred_at": "2030-01-01T00:00:00Z",
                            "customer_id": erased})
    raws = [*lines[:600], erasure, *(raw for raw in lines[600:] if customer(raw) != erased)]
    messages = [Incoming(offset, routing(raw)[0], raw, False, None) for offset, raw in enumerate(raws)]
    whole = _fresh()
    made = whole.process(messages)
    whole.done(made)
    assert made.owners[erased] is None and sum(view is not None for view in made.owners.values()) > 20

    # A restart reads the same input again in chunks of 250: every effect was made before.
    again = _fresh(whole.recorded, dict(whole.tails))
    written: list[dict[str, object]] = []
    for start in range(0, len(messages), 250):
        effects = again.process(messages[start:start + 250])
        again.done(effects)
        written.append(dict(effects.owners))
    assert all(not chunk for chunk in written[:-1]), "owners written before the rebuild caught up"
    assert written[-1] == made.owners  # each customer's last owner, once; the erased one only forgotten
