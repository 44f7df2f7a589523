"""Reading partitions directly (no consumer group): the output tails, and a partition's history."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from processors.live_outputs import Mark, mark_of
from processors.live_partition import Incoming
from processors.topics import BROADCAST_COPY_HEADER

# How far back from the end to look for the last marked message (past transaction markers).
TAIL_WINDOW = 16
FETCH_MAX_BYTES = 16 * 1024 * 1024


def broadcast_copy(headers: Iterable[tuple[str, bytes]] | None) -> bool:
    return any(name == BROADCAST_COPY_HEADER for name, _ in headers or ())


def incoming(record: ConsumerRecord) -> Incoming:
    value = record.value
    return Incoming(
        record.offset, record.key, value if value is not None else b"", broadcast_copy(record.headers),
        record.timestamp,
    )


def reader(bootstrap: str, **settings: object) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, auto_offset_reset="earliest",
        fetch_max_bytes=FETCH_MAX_BYTES, max_partition_fetch_bytes=FETCH_MAX_BYTES, **settings,
    )


async def output_tails(bootstrap: str, topics: tuple[str, ...], partition: int) -> dict[str, Mark | None]:
    """The mark of the last message the worker published on ``partition`` of each topic."""
    consumer = reader(bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, partition) for topic in topics]
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        tails: dict[str, Mark | None] = {}
        for tp in tps:
            tails[tp.topic] = None
            if ends[tp] <= starts[tp]:
                continue
            consumer.seek(tp, max(starts[tp], ends[tp] - TAIL_WINDOW))
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for record in batch.get(tp, []):
                    mark = mark_of(list(record.headers or ()))
                    if mark is not None:
                        tails[tp.topic] = mark
        return tails
    finally:
        await consumer.stop()


async def history(
    bootstrap: str, topic: str, partition: int, until: int | None, chunk: int
) -> AsyncIterator[list[Incoming]]:
    """One partition's messages from its beginning up to ``until`` (exclusive; default: its end now), in chunks."""
    consumer = reader(bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        if until is None:
            until = (await consumer.end_offsets([tp]))[tp]
        await consumer.seek_to_beginning(tp)
        pending: list[Incoming] = []
        while await consumer.position(tp) < until:
            fetched = await consumer.getmany(tp, timeout_ms=1000)
            pending.extend(incoming(r) for r in fetched.get(tp, []) if r.offset < until)
            if len(pending) >= chunk:
                yield pending
                pending = []
        if pending:
            yield pending
    finally:
        await consumer.stop()
