"""Reading partitions directly (no consumer group): the output tails, and a partition's history.

Every reader of the project reads committed messages only (``read_committed``):
the worker's transactional outputs (``--processing-guarantee exactly_once``) are
visible once committed and never when aborted, and input from transactional
upstream producers is read the same way live and in a rebuild.  Without
transactions this is the same as reading everything.

Partition ends come from fetch responses (the last stable offset), not from
ListOffsets alone: the embedded broker (Tansu) answers ListOffsets(latest) with
the last record batch's base offset + 1, short of the end whenever that batch
holds more than one record.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError

from processors.kafka.marks import Mark, mark_of
from processors.kafka.security import client_settings
from processors.kafka.topics import BROADCAST_COPY_HEADER, partition_counts, unreachable

# How far back from the end to look first for the last marked message; doubled while
# only transaction markers and aborted messages are found.
TAIL_WINDOW = 16
ISOLATION_LEVEL = "read_committed"
FETCH_MAX_BYTES = 16 * 1024 * 1024
HISTORY_FETCH_BYTES = 1024 * 1024
# The embedded broker (Tansu) holds a fetch for its whole max wait even when data
# arrives meanwhile (Apache Kafka answers at once), so the wait is the latency floor.
FETCH_MAX_WAIT_MS = 10
HIGH_WATERMARK_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Incoming:
    """An input message as the engines see it, from a fetch or from faust."""

    offset: int
    key: bytes | None
    value: bytes
    broadcast_copy: bool = False
    timestamp_ms: int | None = None


def broadcast_copy(headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None) -> bool:
    """Whether a message's headers (aiokafka's pairs, or a mapping as faust may give them) mark a broadcast copy."""
    if isinstance(headers, Mapping):
        return BROADCAST_COPY_HEADER in headers
    return any(name == BROADCAST_COPY_HEADER for name, _ in headers or ())


def incoming(record: ConsumerRecord) -> Incoming:
    value = record.value
    return Incoming(
        record.offset, record.key, value if value is not None else b"", broadcast_copy(record.headers),
        record.timestamp,
    )


def reader(bootstrap: str, **settings: object) -> AIOKafkaConsumer:
    fetching = {"fetch_max_bytes": FETCH_MAX_BYTES, "max_partition_fetch_bytes": FETCH_MAX_BYTES, **settings}
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, auto_offset_reset="earliest",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS, isolation_level=ISOLATION_LEVEL, **client_settings(), **fetching,
    )


async def start_relay(
    bootstrap: str, topic: str, group: str, start_from: str = "earliest"
) -> tuple[AIOKafkaConsumer, AIOKafkaProducer]:
    """A group member that commits its offsets itself, and an ``acks=all`` producer, both started (a
    relay: read a topic, write what it implies, then commit); an unreachable broker is one clear error."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
        auto_offset_reset=start_from, isolation_level=ISOLATION_LEVEL, **client_settings(),
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **client_settings())
    try:
        await consumer.start()
        await producer.start()
    except KafkaConnectionError as error:
        await consumer.stop()
        await producer.stop()
        raise unreachable(bootstrap, error) from None
    return consumer, producer


def readable_end(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
    """Where committed messages end, as the last fetch reported it (None before any fetch)."""
    end: int | None = consumer.last_stable_offset(tp)
    return end


async def high_watermarks(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """The end of each assigned partition's committed messages, as a fetch reports it; moves the consumer's positions."""
    ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
    asking = [tp for tp in tps if ends[tp] > 0]
    for tp in asking:
        consumer.seek(tp, ends[tp] - 1)
    deadline = asyncio.get_running_loop().time() + HIGH_WATERMARK_TIMEOUT_SECONDS
    while asking and asyncio.get_running_loop().time() < deadline:
        await consumer.getmany(*asking, timeout_ms=200)
        for tp in list(asking):
            end = readable_end(consumer, tp)
            if end is not None:
                ends[tp] = max(ends[tp], end)
                asking.remove(tp)
    return ends


async def assign_topic(consumer: AIOKafkaConsumer, bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    """Assign every partition of ``topic`` to a started consumer; return each one's end.

    (The partitions come from the admin API: a consumer knows only the topics it
    was asked about, and ``consumer.topics()`` does not tell it.)
    """
    count = (await partition_counts(bootstrap, (topic,))).get(topic, 0)
    tps = [TopicPartition(topic, p) for p in range(count)]
    consumer.assign(tps)
    return await high_watermarks(consumer, tps)


async def output_tails(bootstrap: str, topics: tuple[str, ...], partition: int) -> dict[str, Mark | None]:
    """The mark of the last message the worker published on ``partition`` of each topic."""
    consumer = reader(bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, partition) for topic in topics]
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        ends = await high_watermarks(consumer, tps)
        tails: dict[str, Mark | None] = {}
        for tp in tps:
            tails[tp.topic] = await _last_mark(consumer, tp, starts[tp], ends[tp])
        return tails
    finally:
        await consumer.stop()


async def _last_mark(consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, end: int) -> Mark | None:
    """The mark of the last committed marked message before ``end``, looking back ever further."""
    window = TAIL_WINDOW
    stop = end
    while stop > start:
        begin = max(start, stop - window)
        consumer.seek(tp, begin)
        found: Mark | None = None
        while await consumer.position(tp) < stop:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            for record in batch.get(tp, []):
                mark = mark_of(list(record.headers or ())) if record.offset < stop else None
                if mark is not None:
                    found = mark
        if found is not None:
            return found
        stop, window = begin, window * 2
    return None


async def history(
    bootstrap: str, topic: str, partition: int, chunk: int, start: int | None = None, until: int | None = None
) -> AsyncIterator[list[Incoming]]:
    """One partition's messages from ``start`` (default: its beginning) up to ``until``
    (exclusive; default: its end now), in chunks."""
    # A fetch brings at most HISTORY_FETCH_BYTES (a larger message still comes whole): a worker
    # starting on a long backlog holds one chunk at a time, not the backlog.
    consumer = reader(bootstrap, max_partition_fetch_bytes=HISTORY_FETCH_BYTES, fetch_max_bytes=HISTORY_FETCH_BYTES)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        if until is None:
            until = (await high_watermarks(consumer, [tp]))[tp]
        if start is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, start)
        pending: list[Incoming] = []
        while await consumer.position(tp) < until:
            fetched = await consumer.getmany(tp, timeout_ms=1000, max_records=chunk)
            pending.extend(incoming(r) for r in fetched.get(tp, []) if r.offset < until)
            if len(pending) >= chunk:
                yield pending
                pending = []
        if pending:
            yield pending
    finally:
        await consumer.stop()
