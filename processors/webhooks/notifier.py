"""Consume a notice topic (``spoc.owner-changed`` by default, or ``spoc.follow-ups``) and deliver every
message to every endpoint.

Order: a partition's messages are delivered one after the other (a customer's
notices are all in one partition, in order), partitions side by side.
Offsets are committed only for messages delivered to every endpoint or
dead-lettered, so a crash delivers again (receivers dedupe by ``webhook-id``) and
never skips.  An endpoint that keeps failing holds its partition until the retry
budget is spent, then the message goes to ``<topic>.dlq`` (``spoc.owner-changed.dlq``)
with the last error and the partition moves on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    RebalanceInProgressError,
)
from prometheus_client import Counter, Gauge, Histogram
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_never,
    wait_random_exponential,
)

from processors.kafka.reading import readable_end, start_relay
from processors.kafka.topics import (
    OWNER_CHANGED,
    TopicLayoutError,
    ensure_topics,
    partition_counts,
)
from processors.runtime.prometheus import new_registry
from processors.webhooks.delivery import Endpoint, Outcome, RetryPolicy, deliver
from processors.webhooks.payload import (
    InvalidNotice,
    Signer,
    WebhookEvent,
    webhook_event,
)

log = logging.getLogger("spoc.notify")

FETCH_RECORDS = 500
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass(frozen=True)
class NotifySettings:
    bootstrap: str
    endpoints: tuple[Endpoint, ...]
    secret: str | None = None
    group: str = "spoc-notify"
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    start_from: str = "earliest"
    """Where a new group starts: ``earliest`` (every notice kept on the topic) or ``latest``."""
    topic: str = OWNER_CHANGED
    """What to deliver: ``spoc.owner-changed``, ``spoc.follow-ups`` or ``spoc.handoffs``
    (:data:`~processors.webhooks.payload.CONTRACTS`)."""

    @property
    def dead_letters(self) -> str:
        return f"{self.topic}.dlq"


def default_group(topic: str) -> str:
    """``spoc-notify`` for owner changes; one group per other topic, so that each has its own offsets."""
    return "spoc-notify" if topic == OWNER_CHANGED else f"spoc-notify-{topic.removeprefix('spoc.')}"


class NotifyMetrics:
    def __init__(self) -> None:
        self.registry = new_registry("notifier")
        r = self.registry
        self.delivered = Counter("spoc_webhook_delivered", "Notices delivered (2xx), by endpoint", ["endpoint"], registry=r)
        self.retried = Counter("spoc_webhook_retried", "Attempts that failed and were retried, by endpoint", ["endpoint"], registry=r)
        self.dead_lettered = Counter(
            "spoc_webhook_dead_lettered", "Notices sent to the topic's dead letters (<topic>.dlq), by endpoint", ["endpoint"], registry=r,
        )
        self.lag = Gauge(
            "spoc_webhook_lag", "Notices on the topic not yet delivered or dead-lettered, by partition "
            "(each partition's appears after its first fetch)", ["topic", "partition"], registry=r,
        )
        self.latency = Histogram(
            "spoc_webhook_latency_seconds", "From the notice's Kafka timestamp to its delivery, by endpoint",
            ["endpoint"], buckets=LATENCY_BUCKETS, registry=r,
        )

    def totals(self) -> dict[str, float]:
        return {
            name: sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))
            for name, counter in (("delivered", self.delivered), ("retried", self.retried),
                                  ("dead_lettered", self.dead_lettered))
        }


class Notifier:
    def __init__(self, settings: NotifySettings, metrics: NotifyMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.signer = Signer(settings.secret)
        self.done: dict[TopicPartition, int] = {}
        """Per partition, the next offset: everything before it delivered or dead-lettered."""

    async def run(self, stopping: asyncio.Event) -> None:
        bootstrap = self.settings.bootstrap
        await self._check_topics()
        consumer, producer = await start_relay(bootstrap, self.settings.topic, self.settings.group, self.settings.start_from)
        self.producer = producer
        log.info(
            "notify started",
            extra={"topic": self.settings.topic, "endpoints": [e.label for e in self.settings.endpoints],
                   "group": self.settings.group, "signed": self.signer.signing},
        )
        try:
            async with aiohttp.ClientSession() as session:
                self.session = session
                while not stopping.is_set():
                    fetched = await consumer.getmany(timeout_ms=500, max_records=FETCH_RECORDS)
                    if not fetched:
                        await self._note_lag(consumer)
                        continue
                    work = asyncio.ensure_future(
                        asyncio.gather(*(self._partition(tp, records) for tp, records in fetched.items()))
                    )
                    stop = asyncio.ensure_future(stopping.wait())
                    racing: set[asyncio.Future[Any]] = {work, stop}
                    await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
                    stop.cancel()
                    if not work.done():  # stopping: what is unfinished is delivered again next time
                        work.cancel()
                        await asyncio.gather(work, return_exceptions=True)
                    else:
                        work.result()
                    await self._commit(consumer)
                    await self._note_lag(consumer)
        finally:
            await self._commit(consumer)
            await consumer.stop()
            await producer.stop()
            log.info("notify stopped", extra=self.metrics.totals())

    async def _note_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Everything fetched is done here: each partition's committed end (as its last fetch saw it) minus its position."""
        for tp in consumer.assignment():
            end = readable_end(consumer, tp)
            if end is not None:
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, end - await consumer.position(tp)))

    async def _check_topics(self) -> None:
        topic = self.settings.topic
        counts = await partition_counts(self.settings.bootstrap, (topic,))
        if topic not in counts:
            raise TopicLayoutError(f"topic {topic} does not exist yet; start `spoc worker` first, it creates it")
        await ensure_topics(self.settings.bootstrap, (self.settings.dead_letters,), counts[topic])

    async def _partition(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        for record in records:
            await self._one(record)
            self.done[tp] = record.offset + 1

    async def _one(self, record: ConsumerRecord) -> None:
        try:
            event = webhook_event(record.value or b"", self.settings.topic)
        except InvalidNotice as error:
            log.error("invalid notice dead-lettered", extra={"offset": record.offset, "error": str(error)})
            await self._dead_letter(record, None, Outcome(False, 0, str(error)))
            return
        endpoints = self.settings.endpoints
        outcomes = await asyncio.gather(*(self._deliver(endpoint, event) for endpoint in endpoints))
        for endpoint, outcome in zip(endpoints, outcomes):
            if outcome.delivered:
                self.metrics.delivered.labels(endpoint.label).inc()
                self.metrics.latency.labels(endpoint.label).observe(max(0.0, time.time() - record.timestamp / 1000))
            else:
                log.error(
                    "webhook not delivered; dead-lettered",
                    extra={"endpoint": endpoint.label, "webhook_id": event.webhook_id, "attempts": outcome.attempts,
                           "error": outcome.error},
                )
                await self._dead_letter(record, endpoint, outcome)

    async def _deliver(self, endpoint: Endpoint, event: WebhookEvent) -> Outcome:
        retried = self.metrics.retried.labels(endpoint.label)
        return await deliver(self.session, endpoint, event, self.signer, self.settings.policy, lambda _: retried.inc())

    async def _dead_letter(self, record: ConsumerRecord, endpoint: Endpoint | None, outcome: Outcome) -> None:
        headers = [
            ("spoc-webhook-error", (outcome.error or "").encode()),
            ("spoc-webhook-attempts", str(outcome.attempts).encode()),
            ("spoc-dlq-source-topic", record.topic.encode()),
            ("spoc-dlq-source-partition", str(record.partition).encode()),
            ("spoc-dlq-source-offset", str(record.offset).encode()),
        ]
        if endpoint is not None:
            headers.insert(0, ("spoc-webhook-endpoint", endpoint.label.encode()))
        # Kafka may be away for a while: the offset is committed only once the dead letter is written.
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(KafkaError), wait=wait_random_exponential(multiplier=0.5, max=30),
            stop=stop_never, reraise=True,
        ):
            with attempt:
                await self.producer.send_and_wait(
                    self.settings.dead_letters, record.value, key=record.key, partition=record.partition, headers=headers,
                )
        self.metrics.dead_lettered.labels(endpoint.label if endpoint else "none").inc()

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        if not self.done:
            return
        offsets, self.done = self.done, {}
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, RebalanceInProgressError, IllegalStateError) as error:
            # The partitions moved to another notifier, which delivers these again (same webhook-id).
            log.warning("offsets not committed after a rebalance", extra={"error": repr(error)})
