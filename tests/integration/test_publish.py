"""`spoc publish` against a real broker: keys, per-customer order, broadcast departures."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer

from processors.kafka.embedded_broker import EmbeddedBroker
from processors.kafka.topics import TOUCHPOINTS, ensure_topics
from processors.publish import publish
from spoc.worker_process import free_port
from tests.live import spoc_publish_from_a_pipe
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
        assert touches == [line for line in lines if line in touches]  # file order within the partition
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


def test_publish_of_a_missing_file_says_so_before_looking_for_a_broker(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "spoc", "publish", str(tmp_path / "nope.jsonl"), "--bootstrap", "127.0.0.1:1"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "input file not found" in result.stderr and "cannot reach Kafka" not in result.stderr


def test_publish_from_a_pipe_sends_each_line_as_it_arrives(tmp_path: Path) -> None:
    """An upstream system's pipe may go quiet; what arrived is on Kafka meanwhile, not held back."""
    with EmbeddedBroker(free_port()) as broker:
        publisher = spoc_publish_from_a_pipe(broker.bootstrap)
        assert publisher.stdin is not None
        try:
            publisher.stdin.write(orjson.dumps(_touch(1, "c1")) + b"\n")
            publisher.stdin.flush()
            arrived = asyncio.run(_consume_all(broker.bootstrap, TOUCHPOINTS, 1))  # the pipe is still open
            assert [m for ms in arrived.values() for m in ms] == [orjson.dumps(_touch(1, "c1"))]
            publisher.stdin.close()
            assert publisher.wait(60) == 0
        finally:
            publisher.kill()
            publisher.wait()


def test_ctrl_c_stops_publish_while_its_pipe_is_quiet() -> None:
    with EmbeddedBroker(free_port()) as broker:
        publisher = spoc_publish_from_a_pipe(broker.bootstrap)
        assert publisher.stdin is not None and publisher.stderr is not None
        try:
            publisher.stdin.write(orjson.dumps(_touch(1, "c1")) + b"\n")
            publisher.stdin.flush()
            assert asyncio.run(_consume_all(broker.bootstrap, TOUCHPOINTS, 1))  # running, waiting for more
            publisher.send_signal(signal.SIGINT)
            assert publisher.wait(20) == 130  # it once waited for the pipe's next line first
            assert "spoc: interrupted" in publisher.stderr.read().decode()
        finally:
            publisher.kill()
            publisher.wait()


def test_publish_gives_up_on_a_broker_away_beyond_the_outage_limit_and_says_what_to_do(tmp_path: Path) -> None:
    broker = EmbeddedBroker(free_port()).start()
    try:
        publisher = spoc_publish_from_a_pipe(broker.bootstrap, "--outage-limit", "3")
        assert publisher.stdin is not None
        publisher.stdin.write(orjson.dumps(_touch(1, "c1")) + b"\n")
        publisher.stdin.flush()
        assert asyncio.run(_consume_all(broker.bootstrap, TOUCHPOINTS, 1))
    finally:
        broker.stop()
    try:
        publisher.stdin.write(orjson.dumps(_touch(2, "c1")) + b"\n")
        publisher.stdin.close()
        started = time.monotonic()
        assert publisher.wait(60) == 2
        assert time.monotonic() - started >= 2.5  # it waited for the broker first
        assert publisher.stderr is not None
        stderr = publisher.stderr.read().decode()
        assert "spoc: error: Kafka did not acknowledge input line 2 within 3 s" in stderr
        assert "Publishing the input again is safe" in stderr and "Traceback" not in stderr
        assert "Kafka broker unreachable" in stderr  # said once, not per attempt
    finally:
        publisher.kill()
        publisher.wait()


def test_lines_from_a_pipe_are_the_lines_read_from_a_file(tmp_path: Path) -> None:
    """``spoc publish -`` reads a pipe as data arrives, ``spoc replay`` reads files: both must see the same lines."""
    import os
    import threading

    from processors.sources import pipe_lines, read_lines

    content = b"\xef\xbb\xbfa\r\n\nb" + b"x" * 5_000 + b"\nc\r\r\nlast without newline"  # a byte order mark first
    path = tmp_path / "in.jsonl"
    path.write_bytes(content)
    read, write = os.pipe()

    def dribble() -> None:  # in small pieces, as a slow upstream would
        with os.fdopen(write, "wb", buffering=0) as pipe:
            for i in range(0, len(content), 61):
                pipe.write(content[i:i + 61])

    async def streamed() -> list[tuple[int, bytes]]:
        with os.fdopen(read, "rb") as pipe:
            return [line async for line in pipe_lines(pipe, chunk_bytes=64)]

    writer = threading.Thread(target=dribble)
    writer.start()
    assert asyncio.run(streamed()) == list(read_lines(str(path)))
    writer.join()
    assert len(list(read_lines(str(path)))) == 5
    assert next(read_lines(str(path))) == (1, b"a")
