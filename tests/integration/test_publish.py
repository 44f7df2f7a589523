"""`spoc publish` against a real broker: keys, per-customer order, broadcast departures."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from processors.publish import publish
from processors.topics import ensure_topics
from tests.replaying import write_jsonl
from tests.scenario import day


async def _consume_all(bootstrap: str, topic: str, expected: int) -> dict[int, list[bytes]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=f"g-{uuid.uuid4().hex[:8]}", enable_auto_commit=False)
    await consumer.start()
    by_partition: dict[int, list[bytes]] = {}
    try:
        received = 0
        while received < expected:
            batch = await consumer.getmany(timeout_ms=5000)
            if not batch:
                break
            for tp, messages in batch.items():
                by_partition.setdefault(tp.partition, []).extend(m.value for m in messages)
                received += len(messages)
    finally:
        await consumer.stop()
    return by_partition


def _touch(n: int, customer: str) -> dict[str, object]:
    return {"event_id": f"e{n}", "occurred_at": day(n), "customer_id": customer, "channel": "phone",
            "direction": "inbound", "department": "support", "employee_id": "alice"}


def test_publish_keeps_each_customer_in_one_partition_and_broadcasts_departures(tmp_path: Path, kafka_bootstrap: str) -> None:
    topic = f"spoc.touchpoints.{uuid.uuid4().hex[:8]}"
    customers = [f"c{k}" for k in range(8)]
    events: list[dict[str, object] | bytes] = [_touch(n, customers[n % 8]) for n in range(40)]
    events.insert(20, {"type": "employee_departed", "event_id": "dep", "occurred_at": day(20), "employee_id": "alice"})
    events.append(b"{broken")
    path = write_jsonl(tmp_path / "in.jsonl", events)

    async def run() -> tuple[object, dict[int, list[bytes]]]:
        assert await ensure_topics(kafka_bootstrap, (topic,), partitions=3) == [topic]
        assert await ensure_topics(kafka_bootstrap, (topic,), partitions=3) == []  # idempotent
        summary = await publish([str(path)], kafka_bootstrap, topic)
        return summary, await _consume_all(kafka_bootstrap, topic, 40 + 3 + 1)

    summary, by_partition = asyncio.run(run())
    assert (summary.lines, summary.messages, summary.broadcasts, summary.unkeyed) == (42, 44, 1, 1)  # type: ignore[attr-defined]
    assert sorted(by_partition) == [0, 1, 2]
    lines = path.read_bytes().splitlines()
    for messages in by_partition.values():
        # The departure reaches every partition, at its place among that partition's events.
        assert messages.count(lines[20]) == 1
        touches = [m for m in messages if m.startswith(b'{"event_id":"e')]
        assert touches == [l for l in lines if l in touches]  # file order within the partition
    homes = {c: {p for p, ms in by_partition.items() for m in ms if f'"customer_id":"{c}"'.encode() in m} for c in customers}
    assert all(len(partitions) == 1 for partitions in homes.values())


def test_publish_without_a_broker_says_how_to_get_one(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [_touch(1, "c1")])
    result = subprocess.run(
        [sys.executable, "-m", "spoc", "publish", str(path), "--bootstrap", "127.0.0.1:1"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "cannot reach Kafka at 127.0.0.1:1" in result.stderr and "spoc broker" in result.stderr
    assert "Traceback" not in result.stderr
