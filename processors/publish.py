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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from ledger.errors import TransientError
from processors.kafka.routing import routing, send_routed
from processors.kafka.security import client_settings
from processors.kafka.topics import unreachable
from processors.sources import check_readable, stream_lines

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
                route = key, broadcast = routing(raw)
                summary.broadcasts += broadcast
                summary.unkeyed += key is None and not broadcast
                pending.extend((summary.lines, sent) for sent in await send_routed(producer, topic, raw, partitions, route))
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
