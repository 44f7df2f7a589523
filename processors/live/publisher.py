"""The worker's output producers: one shared, idempotent where the broker allows, or one transactional
producer per partition (``--processing-guarantee exactly_once``), which fences any older holder."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError, ProducerFenced

from processors.kafka.marks import Outgoing, beyond
from processors.kafka.reading import output_tails
from processors.kafka.security import client_settings
from processors.kafka.topics import LARGE_MESSAGE_BYTES, OUTPUT_TOPICS, idempotence_available, unreachable
from processors.live.retrying import RETRY_FIRST_SECONDS, next_delay, retrying

log = logging.getLogger("spoc.worker")


class PartitionFenced(Exception):
    """A newer holder of the partition fenced this worker's transactional producer."""


class OutputPublisher:
    def __init__(self, bootstrap: str, transactional_id_prefix: str | None) -> None:
        self.bootstrap = bootstrap
        self.transactional_id_prefix = transactional_id_prefix
        """Set: each partition's outputs go out in transactions of the producer ``<prefix>-<partition>``."""
        self.producer: AIOKafkaProducer | None = None
        self._transactional: dict[int, AIOKafkaProducer] = {}

    async def start(self) -> None:
        idempotent = await idempotence_available(self.bootstrap)
        log.info("output producer", extra={"idempotent": idempotent})
        self.producer = await self._started_producer(idempotent=idempotent)

    async def _started_producer(self, transactional_id: str | None = None, idempotent: bool = False) -> AIOKafkaProducer:
        """Idempotent where the broker allows: else a retried send can land twice (the sink skips such facts)."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", linger_ms=1, max_request_size=LARGE_MESSAGE_BYTES,
            transactional_id=transactional_id, enable_idempotence=idempotent, **client_settings(),
        )
        try:
            await producer.start()  # with a transactional id: fences older producers of that id
        except KafkaConnectionError as error:
            raise unreachable(self.bootstrap, error) from None
        return producer

    async def stop(self) -> None:
        for partition in list(self._transactional):
            await self.release(partition)
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

    async def fence(self, partition: int) -> None:
        """Take over the partition's transactional id: an older holder can no longer commit outputs."""
        prefix = self.transactional_id_prefix
        if prefix is not None and partition not in self._transactional:
            self._transactional[partition] = await retrying(
                "transactional producer", lambda: self._started_producer(f"{prefix}-{partition}")
            )

    async def release(self, partition: int) -> None:
        producer = self._transactional.pop(partition, None)
        if producer is not None:
            await producer.stop()

    async def publish(self, partition: int, outgoing: list[Outgoing]) -> None:
        """Send and wait for every acknowledgement (in one transaction, when transactional); after a
        failure, resend only what did not land.  Raises :class:`PartitionFenced` when another worker
        took the partition's transactional id (its producer is then let go)."""
        transactional = self._transactional.get(partition)
        producer = transactional or self.producer
        assert producer is not None
        delay = RETRY_FIRST_SECONDS
        while outgoing:
            try:
                if transactional is None:
                    await _send_all(producer, partition, outgoing)
                else:
                    async with transactional.transaction():
                        await _send_all(transactional, partition, outgoing)
                return
            except ProducerFenced:
                await self.release(partition)
                raise PartitionFenced(partition) from None
            except KafkaError as error:
                log.warning(
                    "publishing failed; retrying what did not land",
                    extra={"partition": partition, "error": repr(error), "retry_in_seconds": delay},
                )
                await asyncio.sleep(delay)
                delay = next_delay(delay)
                tails = await retrying("output tails", lambda: output_tails(self.bootstrap, OUTPUT_TOPICS, partition))
                outgoing = [o for o in outgoing if beyond(o.mark, tails.get(o.topic))]


async def _send_all(producer: AIOKafkaProducer, partition: int, outgoing: list[Outgoing]) -> None:
    """Send every message and wait for every acknowledgement.

    A failure is raised once every message sent so far has settled, so none is left with an
    exception nobody retrieved (a fenced producer's failed sends were logged one by one at exit).
    """
    pending: list[asyncio.Future[Any]] = []
    try:
        for o in outgoing:
            pending.append(await producer.send(o.topic, o.value, key=o.key, partition=partition, headers=o.headers))
    finally:
        outcomes = await asyncio.gather(*pending, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
