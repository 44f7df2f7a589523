"""Where an input message goes on the input topic: keyed by its customer, or to every partition.

Used by ``spoc publish`` (lines from files or a pipe) and ``spoc fanout`` (events from ``spoc.control``).
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from processors.kafka.topics import BROADCAST_COPY_HEADER
from schemas.events import BROADCAST_TYPES

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


async def send_routed(
    producer: AIOKafkaProducer, topic: str, raw: bytes, partitions: list[int], route: tuple[bytes | None, bool],
) -> list[Any]:
    """Send one input message where ``route`` (its :func:`routing`) says: keyed by its customer, or a
    broadcast to every partition (the first reports it; the copies, marked ``spoc-broadcast-copy``, only
    apply it). Returns the delivery futures."""
    key, broadcast = route
    if not broadcast:
        return [await producer.send(topic, raw, key=key)]
    return [
        await producer.send(
            topic, raw, partition=partition,
            headers=[(BROADCAST_COPY_HEADER, b"1")] if partition != partitions[0] else None,
        )
        for partition in partitions
    ]
