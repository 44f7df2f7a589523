"""A message keyed by another customer's id is dead-lettered as wrong_key, live and in a topic replay alike."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from processors.batch.replay import TopicInput, replay
from processors.kafka.reading import history
from processors.kafka.topics import ALL_TOPICS, TOUCHPOINTS, TOUCHPOINTS_DLQ, ensure_topics
from processors.live.engine import LiveLedger, LiveSettings
from processors.live.metrics import WorkerMetrics
from tests.live import project, read_records
from tests.replaying import rows


def _touch(event_id: str, customer_id: str) -> bytes:
    return orjson.dumps({
        "event_id": event_id, "occurred_at": "2024-01-01T09:00:00Z", "customer_id": customer_id, "channel": "phone",
        "direction": "inbound", "department": "support", "employee_id": "alice", "outcome": "resolved",
    })


MESSAGES = [
    (b"c1", _touch("e1", "c1")),
    (b"c1", _touch("e2", "c2")),  # keyed by c1: a partitioner may have put it away from c2's other events
    (None, _touch("e3", "c3")),  # unkeyed: accepted (one partition keeps it in order)
    (b"x", orjson.dumps({"type": "employee_departed", "event_id": "d1", "occurred_at": "2024-01-02T00:00:00Z",
                         "employee_id": "bob"})),
]


def test_wrong_keys_are_dead_lettered_live_and_in_replay(tmp_path: Path, pipeline_bootstrap: str) -> None:
    async def run_live() -> None:
        await ensure_topics(pipeline_bootstrap, ALL_TOPICS, 1)
        producer = AIOKafkaProducer(bootstrap_servers=pipeline_bootstrap, acks="all")
        await producer.start()
        try:
            for key, value in MESSAGES:
                await producer.send_and_wait(TOUCHPOINTS, value, key=key, partition=0)
        finally:
            await producer.stop()
        [messages] = [chunk async for chunk in history(pipeline_bootstrap, TOUCHPOINTS, 0, 10**6)]
        metrics = WorkerMetrics()
        engine = LiveLedger(LiveSettings(pipeline_bootstrap, f"sqlite:///{tmp_path}/ledger.sqlite"), metrics, lambda *_: None)
        await engine.start()
        try:
            await engine.handle(0, messages)
        finally:
            await engine.stop()
        assert metrics.dead_letters.labels(reason="wrong_key")._value.get() == 1

    asyncio.run(run_live())
    live = tmp_path / "live.duckdb"
    project(pipeline_bootstrap, live, f"sqlite:///{tmp_path}/ledger.sqlite")
    replayed = tmp_path / "replayed.duckdb"
    replay(TopicInput(pipeline_bootstrap, TOUCHPOINTS), replayed, f"sqlite:///{tmp_path}/replayed.sqlite")

    for db in (live, replayed):
        assert rows(db, "SELECT customer_id FROM touchpoints ORDER BY 1") == [("c1",), ("c3",)]
        [(reason, field, detail, raw)] = rows(db, "SELECT reason, field, detail, raw FROM rejected_events")
        assert (reason, field, raw) == ("wrong_key", "customer_id", MESSAGES[1][1])
        assert "'c1' is not its customer_id 'c2'" in detail
        assert rows(db, "SELECT count(*) FROM control_events") == [(1,)]
    [dead] = read_records(pipeline_bootstrap, TOUCHPOINTS_DLQ)
    assert (dead.key, dead.value, dict(dead.headers)["spoc-dlq-reason"]) == (b"c1", MESSAGES[1][1], b"wrong_key")
