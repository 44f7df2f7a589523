"""The live worker's engine: partition states, and their effects made durable in order.

faust hands each batch to :meth:`LiveLedger.submit`, which queues it for the
partition's processor task and returns, so faust keeps reading while earlier
batches are made durable; batches that queue up meanwhile are processed as one
(bigger batches under load, no waiting when idle).  For each batch: run it
through the partition's state (the shared intake step), store the new ledger
events with the batch's last offset in one transaction, publish the output
messages and wait for the broker's acknowledgement, then update the owners view.

Kafka's committed offsets are a hint, not the truth: they may run ahead of the
effects by the queued batches.  The truth is the ledger store's position and the
output topics' tails; a partition's state is rebuilt from its history when
assigned, making on the way every effect still missing, so a crash loses
nothing, and a second pass over the same messages is a no-op.
Framework-free: faust drives it in ``processors/worker.py``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError, ProducerFenced
from eventsourcing.persistence import InterfaceError, OperationalError

from ledger.errors import TransientError
from ledger.policy import DEFAULT_POLICY, Policy
from ledger.store import LedgerStore
from processors.kafka.marks import Outgoing, beyond
from processors.kafka.reading import Incoming, history, output_tails
from processors.kafka.security import client_settings
from processors.kafka.topics import (
    LARGE_MESSAGE_BYTES,
    OUTPUT_TOPICS,
    TOUCHPOINTS,
    idempotence_available,
    partition_source,
    unreachable,
)
from processors.live.metrics import WorkerMetrics
from processors.live.partition import Effects, OwnerView, PartitionLedger
from processors.runtime.heap import LiveSettling, chunked_collection, settle

log = logging.getLogger("spoc.worker")

REBUILD_CHUNK = 5_000
QUEUED_BATCHES = 16
"""Batches waiting per partition at most; beyond, faust waits (back-pressure)."""
LARGEST_BATCH = 5_000
RELEASE_TIMEOUT_SECONDS = 30.0
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0
ANOTHER_POLICY_FIX = (
    "start the worker with the --policy it was started with before; to see the data under another policy, "
    'replay the topic into a new --db (docs/live.md, "Policy")'
)


@dataclass(frozen=True)
class LiveSettings:
    bootstrap: str
    ledger_url: str
    policy: Policy = DEFAULT_POLICY
    transactional_id_prefix: str | None = None
    """Set: each partition's outputs are published in Kafka transactions by a producer with
    the transactional id ``<prefix>-<partition>``, which fences any older holder (a zombie)."""


T = TypeVar("T")
OwnerSink = Callable[[str, OwnerView | None], None]


class LiveLedger:
    def __init__(self, settings: LiveSettings, metrics: WorkerMetrics, owners: OwnerSink) -> None:
        self.settings = settings
        self.metrics = metrics
        self.owners = owners
        self.states: dict[int, PartitionLedger] = {}
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._catching_up: dict[int, asyncio.Task[PartitionLedger]] = {}
        self._queues: dict[int, asyncio.Queue[list[Incoming] | None]] = {}
        self._processors: dict[int, asyncio.Task[None]] = {}
        self._failure: BaseException | None = None
        self._starting = asyncio.Lock()
        self.ledger: LedgerStore | None = None
        self.producer: AIOKafkaProducer | None = None
        self._transactional: dict[int, AIOKafkaProducer] = {}
        self._fenced: set[int] = set()
        self._settling = LiveSettling()

    async def start(self) -> None:
        """Open the ledger store and the producer (once; later calls return at once)."""
        async with self._starting:
            if self.producer is not None:
                return
            self.ledger = await asyncio.to_thread(LedgerStore, self.settings.ledger_url)
            await asyncio.to_thread(self.ledger.refuse_another_policy, self.settings.policy, ANOTHER_POLICY_FIX)
            idempotent = await idempotence_available(self.settings.bootstrap)
            log.info("output producer", extra={"idempotent": idempotent})
            self.producer = await self._started_producer(idempotent=idempotent)

    async def _started_producer(self, transactional_id: str | None = None, idempotent: bool = False) -> AIOKafkaProducer:
        """Idempotent where the broker allows: else a retried send can land twice (the sink skips such facts)."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap, acks="all", linger_ms=1, max_request_size=LARGE_MESSAGE_BYTES,
            transactional_id=transactional_id, enable_idempotence=idempotent, **client_settings(),
        )
        try:
            await producer.start()  # with a transactional id: fences older producers of that id
        except KafkaConnectionError as error:
            raise unreachable(self.settings.bootstrap, error) from None
        return producer

    async def stop(self) -> None:
        """Finish the queued batches, then close the producer and the store."""
        await self.release(set(self._processors))
        for task in list(self._catching_up.values()):
            task.cancel()
        for partition in list(self._transactional):
            await self._stop_transactional(partition)
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None

    async def release(self, partitions: set[int]) -> None:
        """Partitions go to another worker (or the worker stops): finish what is queued, then forget them."""
        for partition in partitions:
            catching_up = self._catching_up.pop(partition, None)
            if catching_up is not None:
                catching_up.cancel()
        finishing = []
        for partition in partitions:
            queue, processor = self._queues.pop(partition, None), self._processors.pop(partition, None)
            if queue is not None and processor is not None:
                finishing.append(asyncio.create_task(_finish(queue, processor)))
        if finishing:
            _, late = await asyncio.wait(finishing, timeout=RELEASE_TIMEOUT_SECONDS)
            for task in late:
                task.cancel()
        for partition in partitions:
            self.states.pop(partition, None)
            await self._stop_transactional(partition)

    async def _stop_transactional(self, partition: int) -> None:
        producer = self._transactional.pop(partition, None)
        if producer is not None:
            await producer.stop()

    def catch_up(self, partitions: set[int]) -> None:
        """Newly assigned partitions: rebuild their state now, making any effects still missing.

        Runs in the background: a partition idle since a crash (or with a ledger
        store that lost its tail) is repaired without waiting for new traffic.
        """
        self._fenced -= partitions
        for partition in partitions:
            if partition not in self.states and partition not in self._catching_up:
                task = asyncio.create_task(self._prepare(partition, None))
                self._catching_up[partition] = task
                task.add_done_callback(functools.partial(self._caught_up, partition))
                task.add_done_callback(self._note_failure)

    def _caught_up(self, partition: int, _: asyncio.Task[PartitionLedger]) -> None:
        self._catching_up.pop(partition, None)

    async def submit(self, partition: int, messages: list[Incoming]) -> None:
        """Queue one partition's messages (in offset order); waits only while the queue is full."""
        if self._failure is not None:
            raise self._failure
        if partition in self._fenced:
            return  # another worker holds it now and processes these messages itself
        queue = self._queues.get(partition)
        if queue is None:
            queue = self._queues[partition] = asyncio.Queue(QUEUED_BATCHES)
            task = self._processors[partition] = asyncio.create_task(self._process_queue(partition, queue))
            task.add_done_callback(self._note_failure)
        await queue.put(messages)

    async def _process_queue(self, partition: int, queue: asyncio.Queue[list[Incoming] | None]) -> None:
        while (messages := await queue.get()) is not None:
            # Whatever queued up meanwhile goes along: one store transaction, one round of acks.
            while not queue.empty() and len(messages) < LARGEST_BATCH:
                more = queue.get_nowait()
                if more is None:
                    await self.handle(partition, messages)
                    return
                messages = messages + more
            await self.handle(partition, messages)

    async def _fence(self, partition: int) -> None:
        """Take over the partition's transactional id: an older holder can no longer commit outputs."""
        prefix = self.settings.transactional_id_prefix
        if prefix is not None and partition not in self._transactional:
            self._transactional[partition] = await _retrying(
                "transactional producer", lambda: self._started_producer(f"{prefix}-{partition}")
            )

    async def _fenced_off(self, partition: int) -> None:
        """Another worker took the partition's transactional id: let the partition go."""
        log.warning(
            "another worker took over this partition (transactional producer fenced); letting it go",
            extra={"partition": partition},
        )
        self._fenced.add(partition)
        self.states.pop(partition, None)
        queue = self._queues.pop(partition, None)
        self._processors.pop(partition, None)
        if queue is not None:
            while not queue.empty():
                queue.get_nowait()
        await self._stop_transactional(partition)

    def _note_failure(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or isinstance(task.exception(), PartitionFenced):
            return  # a fenced partition was let go on purpose
        if task.exception() is not None:
            self._failure = task.exception()
            log.error("partition processing failed", exc_info=self._failure)

    async def handle(self, partition: int, messages: list[Incoming]) -> None:
        """Process one partition's messages and make their effects (the next offsets in order;
        what the state has seen is skipped, a gap is read from the topic)."""
        state = await self._prepare(partition, messages[0].offset)
        async with self._locks[partition]:
            start = state.next_offset
            fresh, gap = _next_offsets(messages, start)
            if gap:
                # Past offsets the state has not seen: a committed offset beyond the rebuild's end,
                # or faust's delivery around a rebalance (a fetched stretch skipped).  The topic is
                # the truth: read the stretch from it.
                until = max(m.offset for m in messages) + 1
                log.info(
                    "delivery skipped offsets; reading them from the topic",
                    extra={"partition": partition, "from_offset": start, "until_offset": until,
                           "delivered_from": messages[0].offset},
                )
                await self._replay(state, start=start, until=until)
            elif fresh:
                effects = await asyncio.to_thread(state.process, fresh)
                await self._make(state, effects)
                self._settling.processed(len(fresh))

    async def _prepare(self, partition: int, until: int | None) -> PartitionLedger:
        async with self._locks[partition]:
            state = self.states.get(partition)
            if state is None:
                state = self.states[partition] = await self._rebuild(partition, until)
            return state

    async def _rebuild(self, partition: int, until: int | None) -> PartitionLedger:
        """The partition's state from its history before ``until`` (default: its current end).

        Effects still missing on the way (after a crash) are made as in live processing.
        """
        started = time.perf_counter()
        assert self.ledger is not None
        await self._fence(partition)  # before reading the tails: nobody else adds to them after
        recorded = await asyncio.to_thread(self.ledger.recorded_position, partition_source(TOUCHPOINTS, partition))
        tails = await output_tails(self.settings.bootstrap, OUTPUT_TOPICS, partition)
        state = PartitionLedger(TOUCHPOINTS, partition, self.settings.policy, recorded, tails)
        messages = await self._replay(state, start=None, until=until)
        seconds = time.perf_counter() - started
        self.metrics.rebuild_seconds.observe(seconds)
        log.info(
            "partition state rebuilt",
            extra={"partition": partition, "messages": messages, "ledger_position": recorded,
                   "resume_offset": until, "seconds": round(seconds, 3)},
        )
        return state

    async def _replay(self, state: PartitionLedger, start: int | None, until: int | None) -> int:
        """Process the partition's history from ``start`` to ``until`` (defaults: beginning, end now)."""
        messages = 0
        with chunked_collection():  # a long history builds a large, long-lived state, as a replay does
            async for chunk in history(self.settings.bootstrap, TOUCHPOINTS, state.partition, REBUILD_CHUNK, start, until):
                effects = await asyncio.to_thread(state.process, chunk)
                await self._make(state, effects)
                settle()
                messages += len(chunk)
        if until is not None:
            state.next_offset = max(state.next_offset, until)
        return messages

    async def _make(self, state: PartitionLedger, effects: Effects) -> None:
        written = await self._store(state, effects)
        await self._publish(state, effects.outgoing)
        state.done(effects)
        for customer_id, view in effects.owners.items():
            self.owners(customer_id, view)
        self.metrics.observe(state.partition, effects, written)

    async def _store(self, state: PartitionLedger, effects: Effects) -> int:
        ledger = self.ledger
        assert ledger is not None
        if state.recorded is not None and effects.last_offset <= state.recorded and not effects.erasures:
            return 0

        def write() -> int:
            written = ledger.record(effects.records, state.source, effects.last_offset)
            ledger.erase(effects.erasures)
            return written

        return await _retrying("ledger store", lambda: asyncio.to_thread(write))

    async def _publish(self, state: PartitionLedger, outgoing: list[Outgoing]) -> None:
        """Send and wait for every acknowledgement (in one transaction, when transactional);
        after a failure, resend only what did not land."""
        transactional = self._transactional.get(state.partition)
        producer = transactional or self.producer
        assert producer is not None
        delay = RETRY_FIRST_SECONDS
        while outgoing:
            try:
                if transactional is None:
                    await _send_all(producer, state.partition, outgoing)
                else:
                    async with transactional.transaction():
                        await _send_all(transactional, state.partition, outgoing)
                return
            except ProducerFenced:
                await self._fenced_off(state.partition)
                raise PartitionFenced(state.partition) from None
            except KafkaError as error:
                log.warning(
                    "publishing failed; retrying what did not land",
                    extra={"partition": state.partition, "error": repr(error), "retry_in_seconds": delay},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                tails = await _retrying(
                    "output tails", lambda: output_tails(self.settings.bootstrap, OUTPUT_TOPICS, state.partition)
                )
                outgoing = [o for o in outgoing if beyond(o.mark, tails.get(o.topic))]


async def _finish(queue: asyncio.Queue[list[Incoming] | None], processor: asyncio.Task[None]) -> None:
    """Let the processor finish its queue and end (the end mark waits for room in a full queue)."""
    try:
        await queue.put(None)
        await asyncio.wait([processor])
    except asyncio.CancelledError:
        processor.cancel()
        raise


def _next_offsets(messages: list[Incoming], start: int) -> tuple[list[Incoming], bool]:
    """The messages that continue from offset ``start``, each once and in order; and whether
    one lay past a gap.

    Messages before the next offset are ones the state has seen (a rebuild read them, or a
    redelivery: around a rebalance faust can deliver a stretch twice, even within one batch).
    """
    fresh: list[Incoming] = []
    expected = start
    for message in messages:
        if message.offset == expected:
            fresh.append(message)
            expected += 1
        elif message.offset > expected:
            return fresh, True
    return fresh, False


class PartitionFenced(Exception):
    """A newer holder of the partition fenced this worker's transactional producer."""


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


async def _retrying(what: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """Await ``attempt()`` until it stops failing for a reason that can pass (an outage)."""
    delay = RETRY_FIRST_SECONDS
    while True:
        try:
            return await attempt()
        except (OperationalError, InterfaceError, KafkaError, TransientError) as error:
            log.warning(f"{what} unavailable; retrying", extra={"error": repr(error), "retry_in_seconds": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)
