"""``spoc fanout``: events from ``spoc.control`` onto ``spoc.touchpoints``, each where it belongs.

Producers that cannot copy a departure to every partition with a header, or key by customer
(Kafka Connect, Debezium, kcat), publish their events once to ``spoc.control``. The fan-out
routes each one as ``spoc publish`` does: a departure or absence to every partition of the input
(the first reports it, the copies carry ``spoc-broadcast-copy``), anything else keyed by its
``customer_id``. Each message takes its place in every partition when the fan-out copies it, so
the worker and ``spoc replay --from-topic`` read the same streams.

Offsets are committed once the input topic has acknowledged every copy; a fan-out killed in
between copies those messages again, and the worker counts each second copy as a duplicate
delivery (same ``event_id``, same content) and applies it once.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from processors.kafka.reading import start_relay
from processors.kafka.routing import routing, send_routed
from processors.kafka.topics import CONTROL, TOUCHPOINTS, ensure_topics, wait_for_topic

log = logging.getLogger("spoc.fanout")
GROUP = "spoc-fanout"


async def run_fanout(bootstrap: str, stopping: asyncio.Event, *, until_caught_up: bool = False) -> int:
    """Copy ``spoc.control`` onto ``spoc.touchpoints`` until ``stopping`` is set (or, with ``until_caught_up``,
    until the control topic is read to its end); returns the control messages routed."""
    await ensure_topics(bootstrap, (CONTROL,), 1)
    consumer, producer = await start_relay(bootstrap, CONTROL, GROUP)
    routed = 0
    try:
        partitions = list(range(await wait_for_topic(bootstrap, TOUCHPOINTS, stopping)))
        if not partitions:  # stopped while waiting
            return 0
        log.info("fan-out started", extra={"from": CONTROL, "to": TOUCHPOINTS, "partitions": len(partitions)})
        while not stopping.is_set():
            fetched = await consumer.getmany(timeout_ms=500)
            for tp, records in fetched.items():
                sent = []
                for record in records:
                    value = record.value or b""
                    sent.extend(await send_routed(producer, TOUCHPOINTS, value, partitions, routing(value)))
                for delivery in sent:
                    await delivery
                if records:
                    await consumer.commit({tp: records[-1].offset + 1})
                    routed += len(records)
            if until_caught_up and not fetched and await _caught_up(consumer):
                break
    finally:
        await consumer.stop()
        await producer.stop()
    log.info("fan-out stopped", extra={"routed": routed})
    return routed


async def _caught_up(consumer: AIOKafkaConsumer) -> bool:
    assigned: set[TopicPartition] = consumer.assignment()
    if not assigned:
        return False
    for tp, end in (await consumer.end_offsets(list(assigned))).items():
        if await consumer.position(tp) < end:
            return False
    return True
