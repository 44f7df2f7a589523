"""The Kafka topics of the pipeline, and creating them when missing."""

from __future__ import annotations

import os

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from ledger.errors import TransientError

TOUCHPOINTS = "spoc.touchpoints"
"""Input: one JSON event per message, keyed by customer_id (departures: on every partition)."""
TOUCHPOINTS_DLQ = "spoc.touchpoints.dlq"
RELATIONSHIP_EVENTS = "spoc.relationship-events"
OWNER_CHANGED = "spoc.owner-changed"
ALL_TOPICS = (TOUCHPOINTS, TOUCHPOINTS_DLQ, RELATIONSHIP_EVENTS, OWNER_CHANGED)

BOOTSTRAP_ENV = "SPOC_KAFKA_BOOTSTRAP"
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_PARTITIONS = 6


class KafkaUnreachable(TransientError):
    """No Kafka broker answered at the bootstrap address."""


def bootstrap_servers(given: str | None = None) -> str:
    return given or os.environ.get(BOOTSTRAP_ENV) or DEFAULT_BOOTSTRAP


def unreachable(bootstrap: str, error: Exception) -> KafkaUnreachable:
    return KafkaUnreachable(
        f"cannot reach Kafka at {bootstrap} ({error}); start one with `spoc broker` "
        f"or point --bootstrap / ${BOOTSTRAP_ENV} at your cluster"
    )


async def ensure_topics(
    bootstrap: str, topics: tuple[str, ...] = ALL_TOPICS, partitions: int = DEFAULT_PARTITIONS,
    replication_factor: int = 1,
) -> list[str]:
    """Create the topics that do not exist yet; return the ones created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
    except KafkaConnectionError as error:
        raise unreachable(bootstrap, error) from None
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            try:
                await admin.create_topics([NewTopic(t, partitions, replication_factor) for t in missing])
            except TopicAlreadyExistsError:
                pass  # another process created them first
        return missing
    finally:
        await admin.close()
