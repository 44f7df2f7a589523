"""The live engine driven directly, as faust drives it at its worst: its effects still equal replay.

The engine does not trust the consumer's delivery order: offsets it has seen are dropped, and a
batch that skips offsets has its stretch read from the topic.  (Around a rebalance faust delivers
offsets again, even twice within one batch, and can skip a stretch: seen once as touchpoints
missing from the live tables while the ledger store's position had moved past them,
docs/reliability.md.)  And a partition released with its queue full still finishes every queued
batch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from processors.kafka.reading import Incoming, history
from processors.kafka.topics import ALL_TOPICS, TOUCHPOINTS, ensure_topics
from processors.live.engine import LiveLedger, LiveSettings
from processors.live.metrics import WorkerMetrics
from processors.live.queues import QUEUED_BATCHES
from processors.publish import publish
from tests.integration.test_live import _assert_live_equals_replay, _workload


def _skip_then_stale(messages: list[Incoming]) -> list[list[Incoming]]:
    """A head, then one batch of the next few and a later stretch (a gap), then the skipped ones late."""
    return [messages[:100], messages[100:110] + messages[300:], messages[110:300]]


def _out_of_order(messages: list[Incoming]) -> list[list[Incoming]]:
    """A batch in order at first, then a later stretch, then the rest of the earlier one; then everything again."""
    return [messages[:100], messages[100:150] + messages[200:300] + messages[150:200], messages]


def _repeated(messages: list[Incoming]) -> list[list[Incoming]]:
    """A stretch twice within one batch, then an old stretch again."""
    return [messages[:100], messages[100:200] + messages[150:], messages[:50]]


Drive = Callable[[LiveLedger, list[Incoming]], Awaitable[None]]


def _drive_and_compare(tmp_path: Path, bootstrap: str, seed: int, drive: Drive) -> None:
    """Publish a workload to a one-partition topic, let ``drive`` feed its messages to an engine,
    then compare the ledger store, the topics and the sink's tables with replay."""
    source = _workload(tmp_path, 3_000, seed=seed)

    async def run() -> None:
        await ensure_topics(bootstrap, ALL_TOPICS, 1)
        await publish([str(source)], bootstrap, TOUCHPOINTS)
        [messages] = [chunk async for chunk in history(bootstrap, TOUCHPOINTS, 0, 10**6)]
        engine = LiveLedger(LiveSettings(bootstrap, f"sqlite:///{tmp_path}/ledger.sqlite"), WorkerMetrics(), lambda *_: None)
        await engine.start()
        try:
            await drive(engine, messages)
        finally:
            await engine.stop()

    asyncio.run(run())
    _assert_live_equals_replay(tmp_path, bootstrap, source)


@pytest.mark.parametrize(
    "deliveries", [_skip_then_stale, _out_of_order, _repeated], ids=["gap", "out_of_order", "repeated"]
)
def test_batches_with_gaps_or_out_of_order_give_the_effects_of_replay(
    tmp_path: Path, pipeline_bootstrap: str, deliveries: Callable[[list[Incoming]], list[list[Incoming]]]
) -> None:
    async def deliver(engine: LiveLedger, messages: list[Incoming]) -> None:
        for batch in deliveries(messages):
            await engine.handle(0, batch)

    _drive_and_compare(tmp_path, pipeline_bootstrap, 47, deliver)


def test_a_partition_released_with_a_full_queue_finishes_every_queued_batch(tmp_path: Path, pipeline_bootstrap: str) -> None:
    async def fill_then_release(engine: LiveLedger, messages: list[Incoming]) -> None:
        # The first batch starts the partition's rebuild; the next ones wait in its queue, filling it.
        await engine.submit(0, messages[:100])
        await asyncio.sleep(0.01)
        size = (len(messages) - 100) // QUEUED_BATCHES + 1
        for start in range(100, len(messages), size):
            await engine.submit(0, messages[start:start + size])
        assert engine.queues.full(0), "the scenario needs a full queue"
        await engine.release({0})  # the partition is revoked: a rebalance
        assert not engine.states
        assert b'spoc_partition_position{partition="0",topic="spoc.touchpoints"}' not in engine.metrics.render(), "its new holder reports it"

    _drive_and_compare(tmp_path, pipeline_bootstrap, 53, fill_then_release)
