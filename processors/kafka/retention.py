"""Whether the input topic still holds what a worker's restore needs, checked before the worker starts.

A partition's state is restored from its newest checkpoint plus the input after it, or rebuilt
from the input's first message.  A topic that someone else created with a finite retention
(7 days is Kafka's default) loses that input in time, and a restore from what is left would
silently forget the owners it formed.  So the worker refuses to start when input it needs is
deleted already, or older than the topic's retention (the broker may delete it at any moment),
and warns when the retention is finite but the input it needs is still young enough.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from ledger.errors import TerminalError
from processors.kafka.reading import reader
from processors.kafka.topics import TOUCHPOINTS, admin_client

FOREVER = -1
ALTER = (
    f"kafka-configs.sh --bootstrap-server … --alter --entity-type topics --entity-name {TOUCHPOINTS} "
    "--add-config retention.ms=-1,retention.bytes=-1"
)


class InputRetentionError(TerminalError):
    """The input topic no longer holds, or may soon not hold, the input a restore needs."""


@dataclass(frozen=True)
class Retention:
    """The input topic's retention settings; None where the broker does not report configs."""

    ms: int | None
    bytes: int | None

    @property
    def finite(self) -> bool:
        return any(value is not None and value != FOREVER for value in (self.ms, self.bytes))


@dataclass(frozen=True)
class PartitionInput:
    """What one input partition holds, and what its restore needs."""

    partition: int
    needed_from: int
    """The first offset a restore reads: after the newest checkpoint, else 0."""
    earliest: int
    """The partition's first offset the broker still holds."""
    end: int
    oldest_young_enough: int | None
    """The first offset written within the retention time (``end`` when none is; None without ``retention.ms``)."""


def judge(topic: str, retention: Retention, partitions: list[PartitionInput]) -> list[str]:
    """Warnings to log; raises :class:`InputRetentionError` when input a restore needs is gone or may go any moment."""
    problems: list[str] = []
    for p in partitions:
        if p.needed_from >= p.end:
            continue  # nothing to read
        why = f"after its last checkpoint, from offset {p.needed_from}" if p.needed_from else "from its first offset (no checkpoint)"
        if p.earliest > p.needed_from:
            problems.append(
                f"partition {p.partition} of {topic} begins at offset {p.earliest}, but restoring it needs the input {why}: "
                f"the broker has deleted {p.earliest - p.needed_from:,} messages ({_described(retention)})"
            )
        elif p.oldest_young_enough is not None and p.oldest_young_enough > p.needed_from:
            problems.append(
                f"partition {p.partition} of {topic}: restoring it needs the input {why}, but offsets {p.needed_from}–"
                f"{p.oldest_young_enough - 1} are older than retention.ms={retention.ms}; the broker may delete them at any moment"
            )
    if problems:
        raise InputRetentionError(
            "; ".join(problems) + ". A restore from what is left would silently forget the owners those messages formed. "
            f"Keep the input for good ({ALTER}), then either publish the deleted input again from its source, or start "
            "over on what is left with a new --group and an empty ledger store, accepting that its history is lost"
        )
    if retention.finite:
        return [
            f"{topic} keeps input for a limited time ({_described(retention)}): a worker stopped for longer, or a "
            f"rebuild, would find the input it needs deleted; keep it for good: {ALTER}"
        ]
    return []


def _described(retention: Retention) -> str:
    shown = [f"{name}={value}" for name, value in (("retention.ms", retention.ms), ("retention.bytes", retention.bytes))
             if value is not None]
    return ", ".join(shown) or "its retention is not reported"


async def topic_retention(bootstrap: str, topic: str) -> Retention:
    """``retention.ms`` and ``retention.bytes`` as the broker reports them (None each, if it does not)."""
    async with admin_client(bootstrap) as admin:
        try:
            [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        except Exception:  # a broker without DescribeConfigs (the embedded one): nothing to check
            return Retention(None, None)
    entries = {entry[0]: entry[1] for resource in response.resources if resource[0] == 0 for entry in resource[4]}

    def number(name: str) -> int | None:
        value = entries.get(name)
        return int(value) if value not in (None, "") else None

    return Retention(number("retention.ms"), number("retention.bytes"))


async def partition_inputs(
    bootstrap: str, topic: str, needed_from: dict[int, int], retention_ms: int | None
) -> list[PartitionInput]:
    """What each partition of ``topic`` holds, against the offset its restore needs."""
    consumer = reader(bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(needed_from)]
        earliest = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        young: dict[TopicPartition, int | None] = dict.fromkeys(tps)
        if retention_ms is not None and retention_ms != FOREVER:
            since = int(time.time() * 1000) - retention_ms
            found = await consumer.offsets_for_times(dict.fromkeys(tps, since))
            young = {tp: found[tp].offset if found.get(tp) is not None else ends[tp] for tp in tps}
    finally:
        await consumer.stop()
    return [
        PartitionInput(tp.partition, needed_from[tp.partition], earliest[tp], ends[tp], young[tp]) for tp in tps
    ]
