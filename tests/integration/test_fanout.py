"""`spoc fanout`: a departure published once to spoc.control reaches every partition of the input, as
`spoc publish` would have copied it; the worker's topic then replays to the tables of the file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from benchmarks.workload import generate
from processors.batch.replay import TopicInput, replay
from processors.fanout import run_fanout
from processors.kafka.topics import ALL_TOPICS, BROADCAST_COPY_HEADER, CONTROL, TOUCHPOINTS, ensure_topics
from processors.publish import publish
from tests.live import read_records
from tests.replaying import rows, run_replay, snapshot


def test_a_departure_published_once_reaches_every_partition(tmp_path: Path, pipeline_bootstrap: str) -> None:
    history = tmp_path / "history.jsonl"
    history.write_bytes(b"\n".join(generate(3_000, customers=300, seed=31)) + b"\n")
    before, _ = run_replay(tmp_path, [history], name="before")
    # The employee who owns the most customers now: their departure moves owners in every partition.
    [(leaving, owned)] = rows(before, "SELECT owner_id, count(*) FROM customer_owner GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1")
    assert owned >= 3
    departure = orjson.dumps({"type": "employee_departed", "event_id": "leaves-1", "occurred_at": "2030-01-01T00:00:00Z",
                              "employee_id": leaving})
    touch = orjson.loads(history.read_bytes().splitlines()[0])
    follow_up = orjson.dumps({**touch, "event_id": "after-1", "occurred_at": "2030-01-02T00:00:00Z"})
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(history.read_bytes() + departure + b"\n" + follow_up + b"\n")

    async def run() -> tuple[int, int]:
        await ensure_topics(pipeline_bootstrap, ALL_TOPICS, 3)
        await publish([str(history)], pipeline_bootstrap, TOUCHPOINTS)
        await ensure_topics(pipeline_bootstrap, (CONTROL,), 1)
        producer = AIOKafkaProducer(bootstrap_servers=pipeline_bootstrap, acks="all")
        await producer.start()
        try:
            for value in (departure, follow_up):  # unkeyed, uncopied: as Kafka Connect would write them
                await producer.send_and_wait(CONTROL, value)
        finally:
            await producer.stop()
        first = await run_fanout(pipeline_bootstrap, asyncio.Event(), until_caught_up=True)
        again = await run_fanout(pipeline_bootstrap, asyncio.Event(), until_caught_up=True)
        return first, again

    assert asyncio.run(run()) == (2, 0)  # the second run resumes after the committed offsets: nothing twice
    copies = [r for r in read_records(pipeline_bootstrap, TOUCHPOINTS) if r.value == departure]
    assert sorted(r.partition for r in copies) == [0, 1, 2]
    assert [dict(r.headers).get(BROADCAST_COPY_HEADER) for r in sorted(copies, key=lambda r: r.partition)] == [None, b"1", b"1"]
    [moved] = [r for r in read_records(pipeline_bootstrap, TOUCHPOINTS) if r.value == follow_up]
    assert moved.key == touch["customer_id"].encode()

    from_file, _ = run_replay(tmp_path, [whole], name="file")
    from_topic = tmp_path / "topic.duckdb"
    replay(TopicInput(pipeline_bootstrap, TOUCHPOINTS), from_topic, f"sqlite:///{tmp_path}/topic.sqlite")
    assert snapshot(from_topic) == snapshot(from_file)
    # Nobody keeps the departed owner, whichever partition they are in.
    assert rows(from_topic, f"SELECT count(*) FROM customer_owner WHERE owner_id = '{leaving}'") == [(0,)]
    assert rows(from_topic, "SELECT count(*) FROM control_events WHERE type = 'employee_departed'") == [(1,)]
