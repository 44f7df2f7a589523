"""The engine does not trust the consumer's delivery order: batches with a gap, out of order or
stale are made whole from the topic, so the effects still equal replay.

A rebalance in the middle of a fetch can make faust hand the agent a stale message after messages
it cleared, or skip a stretch it fetched: both were seen as touchpoints missing from the live tables
while the ledger store's position had moved past them (docs/reliability.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from processors.kafka_reading import history
from processors.live_ledger import LiveLedger, LiveSettings
from processors.live_partition import Incoming
from processors.publish import publish
from processors.topics import ALL_TOPICS, TOUCHPOINTS, ensure_topics
from processors.worker_metrics import WorkerMetrics
from tests.integration.test_live import _assert_live_equals_replay, _workload


def _skip_then_stale(messages: list[Incoming]) -> list[list[Incoming]]:
    """A head, then one batch of the next few and a later stretch (a gap), then the skipped ones late."""
    return [messages[:100], messages[100:110] + messages[300:], messages[110:300]]


def _out_of_order(messages: list[Incoming]) -> list[list[Incoming]]:
    """A batch in order at first, then a later stretch, then the rest of the earlier one; then everything again."""
    return [messages[:100], messages[100:150] + messages[200:300] + messages[150:200], messages]


@pytest.mark.parametrize("deliveries", [_skip_then_stale, _out_of_order], ids=["gap", "out_of_order"])
def test_batches_with_gaps_or_out_of_order_give_the_effects_of_replay(
    tmp_path: Path, pipeline_bootstrap: str, deliveries
) -> None:
    source = _workload(tmp_path, 3_000, seed=47)

    async def run() -> None:
        await ensure_topics(pipeline_bootstrap, ALL_TOPICS, 1)
        await publish([str(source)], pipeline_bootstrap, TOUCHPOINTS)
        [messages] = [chunk async for chunk in history(pipeline_bootstrap, TOUCHPOINTS, 0, 10**6)]
        engine = LiveLedger(
            LiveSettings(pipeline_bootstrap, f"sqlite:///{tmp_path}/ledger.sqlite"), WorkerMetrics(), lambda *_: None
        )
        await engine.start()
        try:
            for batch in deliveries(messages):
                await engine.handle(0, batch)
        finally:
            await engine.stop()

    asyncio.run(run())
    _assert_live_equals_replay(tmp_path, pipeline_bootstrap, source)
