"""The Kafka topics of the pipeline, and creating them when missing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)
from aiokafka.partitioner import murmur2

from ledger.errors import TerminalError, TransientError
from processors.kafka.security import client_settings, kafka_security

TOUCHPOINTS = "spoc.touchpoints"
"""Input: one JSON event per message, keyed by customer_id (departures: on every partition)."""
TOUCHPOINTS_DLQ = "spoc.touchpoints.dlq"
RELATIONSHIP_EVENTS = "spoc.relationship-events"
OWNER_CHANGED = "spoc.owner-changed"
FACTS = "spoc.facts"
"""Internal: the rows the DuckDB sink writes (``spoc project``), in chunks of input messages."""
OWNER_CHANGED_DLQ = "spoc.owner-changed.dlq"
"""Owner changes ``spoc notify`` could not deliver to an endpoint, with the last error."""
FOLLOW_UPS_DLQ = "spoc.follow-ups.dlq"
"""Follow-up notices ``spoc notify --topic spoc.follow-ups`` could not deliver."""
FOLLOW_UPS = "spoc.follow-ups"
"""Public: follow-ups that fell due and their closes (SPEC §8, §10)."""
HANDOFFS = "spoc.handoffs"
"""Public: every handoff of SPEC §4 with the customer's owner at its time (§10)."""
HANDOFFS_DLQ = "spoc.handoffs.dlq"
"""Handoffs ``spoc notify --topic spoc.handoffs`` could not deliver."""
CONTROL = "spoc.control"
"""Events a producer publishes once, unkeyed or uncopied; ``spoc fanout`` routes them onto the input."""
OUTPUT_TOPICS = (TOUCHPOINTS_DLQ, RELATIONSHIP_EVENTS, OWNER_CHANGED, FACTS, FOLLOW_UPS, HANDOFFS)
ALL_TOPICS = (TOUCHPOINTS, *OUTPUT_TOPICS)

LARGE_MESSAGE_BYTES = 16 * 1024 * 1024
KEEP_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}
TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    # The worker rebuilds a partition's state from the input's whole history, and the
    # sink resumes from its own offsets however long it was away: neither may expire.
    TOUCHPOINTS: KEEP_FOREVER,
    # A dead letter is the raw input (up to 1 MiB) plus headers; a facts chunk can hold a
    # rejected 1 MiB message in base64: both exceed Apache Kafka's 1 MiB default.
    TOUCHPOINTS_DLQ: {**KEEP_FOREVER, "max.message.bytes": str(LARGE_MESSAGE_BYTES)},
    FACTS: {**KEEP_FOREVER, "max.message.bytes": str(LARGE_MESSAGE_BYTES)},
    OWNER_CHANGED_DLQ: KEEP_FOREVER,
    FOLLOW_UPS_DLQ: KEEP_FOREVER,
    HANDOFFS_DLQ: KEEP_FOREVER,
}
"""Configs of the topics the project creates (the others get the broker's defaults)."""

log = logging.getLogger("spoc.kafka")

BROADCAST_COPY_HEADER = "spoc-broadcast-copy"
"""On the copies of a broadcast (a departure) sent to every partition but the first:
the first partition counts and records it, every partition applies it."""

BOOTSTRAP_ENV = "SPOC_KAFKA_BOOTSTRAP"
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_PARTITIONS = 6


class KafkaUnreachable(TransientError):
    """No Kafka broker answered at the bootstrap address."""


class TopicLayoutError(TerminalError):
    """The topics exist but cannot be used as they are."""


def bootstrap_servers(given: str | None = None) -> str:
    return given or os.environ.get(BOOTSTRAP_ENV) or DEFAULT_BOOTSTRAP


def unreachable(bootstrap: str, error: Exception) -> KafkaUnreachable:
    security = kafka_security()
    if security.protocol != "PLAINTEXT":
        return KafkaUnreachable(
            f"cannot connect to Kafka at {bootstrap} using {security.describe()} ({error}); check --bootstrap / "
            f"${BOOTSTRAP_ENV} and the SPOC_KAFKA_* security settings (docs/security.md)"
        )
    return KafkaUnreachable(
        f"cannot reach Kafka at {bootstrap} ({error}); start one with `spoc broker` "
        f"or point --bootstrap / ${BOOTSTRAP_ENV} at your cluster"
    )


class NoTransactions(TerminalError):
    """The broker cannot run Kafka transactions (``--processing-guarantee exactly_once``)."""


async def _producer_id_refusal(bootstrap: str, **options: Any) -> KafkaError | None:
    """Start a producer that asks the broker for a producer id (InitProducerId): the broker's refusal, or None."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **options, **client_settings())
    try:
        await producer.start()
    except KafkaConnectionError as error:
        raise unreachable(bootstrap, error) from None
    except KafkaError as error:
        return error
    finally:
        await producer.stop()
    return None


async def check_transactions(bootstrap: str, transactional_id: str) -> None:
    """Initialise a transactional producer once, so a broker without transactions is named up front."""
    refusal = await _producer_id_refusal(bootstrap, transactional_id=transactional_id)
    if refusal is not None:
        raise NoTransactions(
            f"the broker at {bootstrap} cannot run Kafka transactions ({refusal!r}); --processing-guarantee "
            f"exactly_once needs one that can (Apache Kafka; the embedded broker cannot): use that, or the "
            f"default at_least_once, which is effectively once for the ledger and the DuckDB tables"
        )


async def idempotence_available(bootstrap: str) -> bool:
    """Whether the broker gives producers ids (Apache Kafka does; the embedded broker does not).

    An idempotent producer's retry of a send whose acknowledgement was lost is written once.
    aiokafka logs a refusal as an error; here it is an answer, so that log is muted.
    """
    sender_log = logging.getLogger("aiokafka.producer.sender")
    level = sender_log.level
    sender_log.setLevel(logging.CRITICAL)
    try:
        return await _producer_id_refusal(bootstrap, enable_idempotence=True) is None
    finally:
        sender_log.setLevel(level)


@asynccontextmanager
async def admin_client(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_settings())
    try:
        await admin.start()
    except KafkaConnectionError as error:
        raise unreachable(bootstrap, error) from None
    try:
        yield admin
    finally:
        await admin.close()


async def ensure_topics(
    bootstrap: str, topics: tuple[str, ...] = ALL_TOPICS, partitions: int = DEFAULT_PARTITIONS,
    replication_factor: int = 1,
) -> list[str]:
    """Create the topics that do not exist yet; return the ones this call created."""
    async with admin_client(bootstrap) as admin:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [NewTopic(t, partitions, replication_factor, topic_configs=TOPIC_CONFIGS.get(t)) for t in missing]
        )
        created = []
        for topic, code, *detail in response.topic_errors:
            if code == 0:
                created.append(topic)
            elif code != TopicAlreadyExistsError.errno:  # another process created it first: fine
                message = next((d for d in detail if isinstance(d, str) and d), "")
                raise TopicLayoutError(f"cannot create topic {topic}: {for_code(code).__name__} {message}".strip())
        return created


async def partition_counts(bootstrap: str, topics: tuple[str, ...] = ALL_TOPICS) -> dict[str, int]:
    """How many partitions each existing topic has.

    Only topics that exist are described: asking a broker with automatic topic
    creation about a missing topic creates it, with the broker's default configs.
    """
    async with admin_client(bootstrap) as admin:
        existing = set(await admin.list_topics())
        wanted = [t for t in topics if t in existing]
        if not wanted:
            return {}
        described = await admin.describe_topics(wanted)
        return {d["topic"]: len(d["partitions"]) for d in described if d.get("partitions")}


def check_output_partitions(counts: dict[str, int]) -> int:
    """The input's partition count, after checking every output topic has as many.

    Output partition = input partition: each has one writer, which is what makes
    resuming after a crash exact (``processors/live_outputs.py``).
    """
    inputs = counts.get(TOUCHPOINTS, 0)
    if not inputs:
        raise TopicLayoutError(f"topic {TOUCHPOINTS} does not exist; `spoc worker` creates it, or create it yourself")
    short = [t for t in OUTPUT_TOPICS if counts.get(t, 0) < inputs]
    if short:
        raise TopicLayoutError(
            f"topics {', '.join(short)} have fewer partitions than {TOUCHPOINTS} ({inputs}); "
            "give every output topic at least as many partitions as the input"
        )
    return inputs


def partition_source(topic: str, partition: int) -> str:
    """The ledger store's name for an input partition's recorded position."""
    return f"{topic}:{partition}"


def partition_of(key: bytes, partitions: int) -> int:
    """The partition the default partitioner of Kafka's clients (murmur2) gives ``key``: where
    ``spoc publish`` puts a customer's events, and faust the customer's row of the owners table."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


async def wait_for_topic(bootstrap: str, topic: str, stopping: asyncio.Event, poll_seconds: float = 1.0) -> int:
    """The topic's partition count once it exists (0 if ``stopping`` is set first); logs once that it waits."""
    waiting = False
    while not stopping.is_set():
        count = (await partition_counts(bootstrap, (topic,))).get(topic, 0)
        if count:
            return count
        if not waiting:
            log.info("waiting for the worker to create its topic", extra={"topic": topic})
            waiting = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), poll_seconds)
    return 0
