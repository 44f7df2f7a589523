"""``spoc publish``: JSONL touchpoints onto Kafka, keyed by customer.

Lines are published as they are (the worker validates and dead-letters); the key
is the customer_id when the line has one, so each customer's events stay in one
partition in file order.  ``employee_departed`` (like ``employee_away`` and ``employee_returned``)
is a broadcast: it is published to every partition, so every partition's customers see it at its
place in the stream;
the copies beyond the first partition carry the ``spoc-broadcast-copy`` header, so
the departure is counted and recorded once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from ledger.errors import TransientError
from processors.kafka.security import client_settings
from processors.kafka.topics import BROADCAST_COPY_HEADER, unreachable
from processors.sources import check_readable, stream_lines
from schemas.events import BROADCAST_TYPES

PENDING_LIMIT = 10_000
OUTAGE_LIMIT_SECONDS = 300.0
"""How long a message may wait for the broker: a broker that is back within this is a pause, not an error."""


class PublishStalled(TransientError):
    """The broker did not acknowledge a message within the outage limit."""


@dataclass
class PublishSummary:
    lines: int = 0
    messages: int = 0
    broadcasts: int = 0
    unkeyed: int = 0


VISIBLE_CUSTOMER = re.compile(rb'"customer_id"\s*:\s*("(?:[^"\\]|\\.)*)("?)')
"""A ``customer_id`` field in a line that does not parse, its string closed or cut short."""


def routing(raw: bytes) -> tuple[bytes | None, bool]:
    """(key, broadcast) for a line: the customer_id, or every partition for a departure."""
    try:
        document: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return visible_customer(raw), False
    if not isinstance(document, dict):
        return None, False
    if document.get("type") in BROADCAST_TYPES:
        return None, True
    customer_id = document.get("customer_id")
    return (customer_id.encode() if isinstance(customer_id, str) else None), False


def visible_customer(raw: bytes) -> bytes | None:
    """The customer a malformed line names in its ``customer_id`` field, if it names one.

    A line cut short is still the customer's bad input: keyed by them, it lands in their
    partition in order with their other events, so an erasure later in the stream blanks
    it in `rejected_events` live as replay does (a line on another partition has no order
    with the erasure)."""
    found = VISIBLE_CUSTOMER.search(raw)
    if found is None:
        return None
    string, closing = found.groups()
    if not closing and found.end() != len(raw):
        return None  # neither closed nor cut at the line's end
    try:
        customer_id = orjson.loads(string + b'"')
    except orjson.JSONDecodeError:
        return None
    return customer_id.encode() if isinstance(customer_id, str) and customer_id else None


async def publish(
    paths: list[str], bootstrap: str, topic: str, progress: Callable[[int], None] | None = None,
    outage_limit: float = OUTAGE_LIMIT_SECONDS,
) -> PublishSummary:
    """Publish every line; a broker outage of up to ``outage_limit`` seconds only pauses it."""
    check_readable(paths)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5,
        # A batch waiting for an unreachable broker fails after request_timeout_ms.
        request_timeout_ms=int(outage_limit * 1000), **client_settings(),
    )
    try:
        await producer.start()
    except KafkaConnectionError as error:
        raise unreachable(bootstrap, error) from None
    summary = PublishSummary()
    pending: list[tuple[int, Any]] = []  # (line count when sent, delivery future)
    try:
        partitions = sorted(await producer.partitions_for(topic))
        for path in paths:
            async for _, raw in stream_lines(path):
                summary.lines += 1
                key, broadcast = routing(raw)
                if broadcast:
                    summary.broadcasts += 1
                    for partition in partitions:
                        # The first partition reports the departure; the copies only apply it.
                        headers = [(BROADCAST_COPY_HEADER, b"1")] if partition != partitions[0] else None
                        pending.append((summary.lines, await producer.send(topic, raw, partition=partition, headers=headers)))
                else:
                    summary.unkeyed += key is None
                    pending.append((summary.lines, await producer.send(topic, raw, key=key)))
                if len(pending) >= PENDING_LIMIT:
                    summary.messages += await _settle(pending, progress, summary.lines, outage_limit)
        summary.messages += await _settle(pending, progress, summary.lines, outage_limit)
    finally:
        await producer.stop()
    return summary


async def _settle(
    pending: list[tuple[int, Any]], progress: Callable[[int], None] | None, lines: int, outage_limit: float
) -> int:
    """Wait until the broker acknowledged every pending message, in the order they were sent."""
    for line, future in pending:
        try:
            await future
        except KafkaError as error:
            raise PublishStalled(
                f"Kafka did not acknowledge input line {line:,} within {outage_limit:.0f} s ({error!r}); the "
                f"lines before it are published. Publishing the input again is safe: the worker counts a "
                f"repeated event_id with the same content as a duplicate and applies it once"
            ) from None
    settled = len(pending)
    pending.clear()
    if progress is not None:
        progress(lines)
    return settled
