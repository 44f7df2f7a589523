"""``spoc worker --processing-guarantee exactly_once``: Kafka transactions end to end.

The embedded broker has no transactions, so the tests of transactions run with
``make test-apache`` (``SPOC_TEST_BROKER=apache``); on the embedded broker the
option is refused with the fix.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from processors.kafka.marks import INDEX_HEADER, OFFSET_HEADER, Mark
from processors.kafka.reading import TAIL_WINDOW, history, output_tails
from processors.kafka.topics import (
    ALL_TOPICS,
    OWNER_CHANGED,
    RELATIONSHIP_EVENTS,
    TOUCHPOINTS,
    ensure_topics,
)
from processors.live.engine import LiveLedger, LiveSettings
from processors.live.metrics import WorkerMetrics
from processors.live.publisher import PartitionFenced
from processors.publish import publish
from spoc.worker_process import partition_ends
from tests.integration.test_live import (
    _assert_live_equals_replay,
    _workload,
    kill_mid_stream_and_restart,
)
from tests.live import read_records, read_topic
from tests.replaying import rows, run_replay

EXTERNAL_BROKER = bool(os.environ.get("SPOC_TEST_BOOTSTRAP") or os.environ.get("SPOC_TEST_BROKER") == "apache")
needs_transactions = pytest.mark.skipif(
    not EXTERNAL_BROKER, reason="the embedded broker has no transactions; `make test-apache` runs this on Apache Kafka",
)


def records_and_offsets(bootstrap: str, topic: str) -> tuple[int, int]:
    """Committed records visible on ``topic``, and the offsets the partitions hold (records + markers + aborted)."""
    return len(read_records(bootstrap, topic)), sum(partition_ends(bootstrap, topic).values())


@needs_transactions
def test_an_exactly_once_worker_killed_mid_stream_neither_loses_nor_doubles(tmp_path: Path, pipeline_bootstrap: str) -> None:
    source = _workload(tmp_path, 20_000, seed=41)
    # Killed possibly inside an open transaction: the restart's producer aborts it.
    group = kill_mid_stream_and_restart(
        tmp_path, pipeline_bootstrap, source, 9, "--processing-guarantee", "exactly_once",
    )
    _assert_live_equals_replay(tmp_path, pipeline_bootstrap, source)
    # Transactions really ran, ours for the outputs and faust's for the owners changelog:
    # commit markers take offsets of their own.
    for topic in (RELATIONSHIP_EVENTS, f"{group}-owners-changelog"):
        committed, offsets = records_and_offsets(pipeline_bootstrap, topic)
        assert 0 < committed < offsets, topic


async def _zombie(bootstrap: str, tmp_path: Path, source: Path, transactional: bool) -> None:
    """Worker A holds the only partition; B takes it over while A, unaware (a long pause past
    its session), goes on processing the same messages."""
    lines = source.read_bytes().splitlines(keepends=True)
    halves = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    halves[0].write_bytes(b"".join(lines[: len(lines) // 2]))
    halves[1].write_bytes(b"".join(lines[len(lines) // 2:]))
    await ensure_topics(bootstrap, ALL_TOPICS, 1)
    prefix = f"spoc-test-{uuid.uuid4().hex[:8]}" if transactional else None
    settings = LiveSettings(bootstrap, f"sqlite:///{tmp_path}/ledger.sqlite", transactional_id_prefix=prefix)
    a, b = (LiveLedger(settings, WorkerMetrics(), lambda *_: None) for _ in range(2))
    await a.start()
    await b.start()
    try:
        await publish([str(halves[0])], bootstrap, TOUCHPOINTS)
        [first] = [chunk async for chunk in history(bootstrap, TOUCHPOINTS, 0, 10**6)]
        await a.handle(0, first)
        await publish([str(halves[1])], bootstrap, TOUCHPOINTS)
        [second] = [chunk async for chunk in history(bootstrap, TOUCHPOINTS, 0, 10**6, start=first[-1].offset + 1)]
        await b.handle(0, second)  # B's rebuild fences A's transactional id, then B makes every effect
        if not transactional:
            await a.handle(0, second)  # the zombie publishes the second half again
            return
        with pytest.raises(PartitionFenced):
            await a.handle(0, second)
        await a.submit(0, second)  # a fenced partition is let go: no failure, nothing published
        assert not a.states
    finally:
        await a.stop()
        await b.stop()


@needs_transactions
@pytest.mark.parametrize("transactional", [True, False], ids=["exactly_once", "at_least_once"])
def test_a_zombie_worker_is_fenced_off_only_with_transactions(
    tmp_path: Path, pipeline_bootstrap: str, transactional: bool
) -> None:
    source = _workload(tmp_path, 3_000, seed=43)
    asyncio.run(_zombie(pipeline_bootstrap, tmp_path, source, transactional))
    replayed, _ = run_replay(tmp_path, [source], name="replay")
    decisions = [i for (i,) in rows(replayed, "SELECT relationship_id || ':' || version FROM ledger_events")]
    published = Counter(m["ledger_event_id"] for m in read_topic(pipeline_bootstrap, RELATIONSHIP_EVENTS))
    assert set(published) == set(decisions)
    doubled = sum(n > 1 for n in published.values())
    if transactional:
        assert doubled == 0, f"{doubled} ledger events published twice despite the transactions"
    else:
        assert doubled > 0, "the zombie published nothing twice: the scenario did not exercise it"


@needs_transactions
def test_the_output_tail_is_the_last_committed_message_past_a_long_aborted_transaction(pipeline_bootstrap: str) -> None:
    async def run() -> dict[str, Mark | None]:
        await ensure_topics(pipeline_bootstrap, ALL_TOPICS, 1)
        producer = AIOKafkaProducer(bootstrap_servers=pipeline_bootstrap, transactional_id=f"t-{uuid.uuid4().hex[:8]}")
        await producer.start()
        try:
            for offset, commit in ((7, True), (8, False)):
                await producer.begin_transaction()
                for index in range(TAIL_WINDOW * 3):  # more than the first look back
                    headers = [(OFFSET_HEADER, str(offset).encode()), (INDEX_HEADER, str(index).encode())]
                    await producer.send(RELATIONSHIP_EVENTS, b"{}", partition=0, headers=headers)
                await (producer.commit_transaction() if commit else producer.abort_transaction())
        finally:
            await producer.stop()
        return await output_tails(pipeline_bootstrap, (RELATIONSHIP_EVENTS, OWNER_CHANGED), 0)

    assert asyncio.run(run()) == {RELATIONSHIP_EVENTS: (7, TAIL_WINDOW * 3 - 1), OWNER_CHANGED: None}


@pytest.mark.skipif(EXTERNAL_BROKER, reason="about the embedded broker, which has no transactions")
def test_exactly_once_on_a_broker_without_transactions_is_refused_with_the_fix(pipeline_bootstrap: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "spoc", "worker", "--bootstrap", pipeline_bootstrap, "--processing-guarantee", "exactly_once"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "cannot run Kafka transactions" in result.stderr and "at_least_once" in result.stderr
