"""``spoc publish``: JSONL touchpoints onto Kafka, keyed by customer.

Lines are published as they are (the worker validates and dead-letters); the key
is the customer_id when the line has one, so each customer's events stay in one
partition in file order.  ``employee_departed`` is a broadcast: it is published to
every partition, so every partition's customers see it at its place in the stream;
the copies beyond the first partition carry the ``spoc-broadcast-copy`` header, so
the departure is counted and recorded once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from processors.kafka_security import client_settings
from processors.sources import check_readable, read_lines
from processors.topics import BROADCAST_COPY_HEADER, unreachable

PENDING_LIMIT = 10_000


@dataclass
class PublishSummary:
    lines: int = 0
    messages: int = 0
    broadcasts: int = 0
    unkeyed: int = 0


def routing(raw: bytes) -> tuple[bytes | None, bool]:
    """(key, broadcast) for a line: the customer_id, or every partition for a departure."""
    try:
        document: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, False
    if not isinstance(document, dict):
        return None, False
    if document.get("type") == "employee_departed":
        return None, True
    customer_id = document.get("customer_id")
    return (customer_id.encode() if isinstance(customer_id, str) else None), False


async def publish(
    paths: list[str], bootstrap: str, topic: str, progress: Callable[[int], None] | None = None
) -> PublishSummary:
    check_readable(paths)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, **client_settings())
    try:
        await producer.start()
    except KafkaConnectionError as error:
        raise unreachable(bootstrap, error) from None
    summary = PublishSummary()
    pending: list[Any] = []
    try:
        partitions = sorted(await producer.partitions_for(topic))
        for path in paths:
            for _, raw in read_lines(path):
                summary.lines += 1
                key, broadcast = routing(raw)
                if broadcast:
                    summary.broadcasts += 1
                    for partition in partitions:
                        # The first partition reports the departure; the copies only apply it.
                        headers = [(BROADCAST_COPY_HEADER, b"1")] if partition != partitions[0] else None
                        pending.append(await producer.send(topic, raw, partition=partition, headers=headers))
                else:
                    summary.unkeyed += key is None
                    pending.append(await producer.send(topic, raw, key=key))
                if len(pending) >= PENDING_LIMIT:
                    summary.messages += await _settle(pending, progress, summary.lines)
        summary.messages += await _settle(pending, progress, summary.lines)
    finally:
        await producer.stop()
    return summary


async def _settle(pending: list[Any], progress: Callable[[int], None] | None, lines: int) -> int:
    """Wait until the broker acknowledged every pending message (a failure raises)."""
    for future in pending:
        await future
    settled = len(pending)
    pending.clear()
    if progress is not None:
        progress(lines)
    return settled
