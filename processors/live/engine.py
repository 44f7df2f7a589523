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
Framework-free: faust drives it in ``processors/live/app.py``.  The queues between faust
and the engine are ``queues``; the output producers ``publisher``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.policy import DEFAULT_POLICY, Policy
from ledger.routing import Route
from ledger.store import LedgerStore
from processors.kafka.reading import Incoming, history, output_tails
from processors.kafka.topics import OUTPUT_TOPICS, TOUCHPOINTS, partition_of, partition_source
from processors.live.checkpoints import Checkpoints
from processors.live.metrics import WorkerMetrics
from processors.live.outputs import facts_messages
from processors.live.partition import Effects, OwnerView, PartitionLedger
from processors.live.publisher import OutputPublisher, PartitionFenced
from processors.live.queues import PartitionQueues
from processors.live.retrying import retrying
from processors.live.sealing import seal_stretch
from processors.runtime.heap import LiveSettling, chunked_collection, settle
from processors.runtime.state_store import DEFAULT_CACHE_MB, CacheBudget, new_scratch, worker_scratch

log = logging.getLogger("spoc.worker")

REBUILD_CHUNK = 5_000
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
    checkpoint_seconds: float = 60.0
    """How often each partition's state is checkpointed while it changes (also at once after an
    erasure, and when the partition is let go); 0: never (a restart reads the whole history)."""
    state_cache_mb: float = DEFAULT_CACHE_MB
    """Memory for the customers' working state of all partitions together; the rest waits on local disk."""


OwnerSink = Callable[[str, OwnerView | None], None]


class LiveLedger:
    """The partitions this worker holds: their states, and their effects made durable in order."""

    def __init__(self, settings: LiveSettings, metrics: WorkerMetrics, owners: OwnerSink) -> None:
        self.settings = settings
        self.metrics = metrics
        self.owners = owners
        self.states: dict[int, PartitionLedger] = {}
        self._rebuilding: dict[int, PartitionLedger] = {}
        """States being restored (reported in the metrics before they are ready)."""
        self.ledger: LedgerStore | None = None
        self.key_store = ""
        """The ledger store's identity, on facts messages: the sink checks it reads the keys from the same store."""
        self.checkpoints: Checkpoints | None = None
        self._checkpointed_at: dict[int, float] = {}
        self.publisher = OutputPublisher(settings.bootstrap, settings.transactional_id_prefix)
        self.queues = PartitionQueues(self.handle, self._note_failure)
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._reading: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        """Held while a partition's state changes or is packed (in a thread): a route reads it between."""
        self._catching_up: dict[int, asyncio.Task[PartitionLedger]] = {}
        self._failure: BaseException | None = None
        self._starting = asyncio.Lock()
        self._fenced: set[int] = set()
        self.assigned_once = False
        """Whether the group has assigned this worker its partitions (any, or none) at least once."""
        self._settling = LiveSettling()
        self._budget = CacheBudget(settings.state_cache_mb)
        self._scratch: Path | None = None
        """Where the partitions keep the customers beyond the budget (deleted when the worker stops)."""
        metrics.watch_state(
            self._budget,
            lambda: [
                s.scratch.customers for s in [*self.states.values(), *self._rebuilding.values()] if s.scratch is not None
            ],
        )

    async def start(self) -> None:
        """Open the ledger store and the producer (once; later calls return at once)."""
        async with self._starting:
            if self.publisher.producer is not None:
                return
            self.ledger = await asyncio.to_thread(LedgerStore, self.settings.ledger_url)
            await asyncio.to_thread(self.ledger.refuse_another_policy, self.settings.policy, ANOTHER_POLICY_FIX)
            identity = await asyncio.to_thread(self.ledger.identity, create=True)
            assert identity is not None
            self.key_store = identity
            if self.settings.checkpoint_seconds > 0:
                self.checkpoints = Checkpoints(self.ledger)
            self._scratch = worker_scratch()
            await self.publisher.start()

    async def stop(self) -> None:
        """Finish the queued batches, then close the producers and the store."""
        await self.release(self.queues.partitions)
        for task in list(self._catching_up.values()):
            task.cancel()
        await self.publisher.stop()
        for state in self.states.values():
            state.close()
        self.states.clear()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None

    async def release(self, partitions: set[int]) -> None:
        """Partitions go to another worker (or the worker stops): finish what is queued, then forget them."""
        for partition in partitions:
            catching_up = self._catching_up.pop(partition, None)
            if catching_up is not None:
                catching_up.cancel()
        await self.queues.finish(partitions)
        for partition in partitions:
            state = self.states.pop(partition, None)
            if (  # whoever takes the partition over starts from here
                state is not None and self.checkpoints is not None and state.all_made
                and self.checkpoints.saved.get(partition, -1) < state.next_offset - 1
            ):
                await self._checkpoint(state)
            if state is not None:
                state.close()
            self.metrics.forget(partition)
            await self.publisher.release(partition)

    def catch_up(self, partitions: set[int]) -> None:
        """Newly assigned partitions: rebuild their state now, making any effects still missing.

        Runs in the background: a partition idle since a crash (or with a ledger
        store that lost its tail) is repaired without waiting for new traffic.
        """
        self.assigned_once = True
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
        await self.queues.put(partition, messages)

    def _let_go(self, partition: int) -> None:
        """Another worker took the partition's transactional id: forget the partition."""
        log.warning(
            "another worker took over this partition (transactional producer fenced); letting it go",
            extra={"partition": partition},
        )
        self._fenced.add(partition)
        self.metrics.forget(partition)
        state = self.states.pop(partition, None)
        self.queues.drop(partition)
        if state is not None:
            asyncio.get_running_loop().create_task(self._close_when_idle(partition, state))

    async def _close_when_idle(self, partition: int, state: PartitionLedger) -> None:
        async with self._locks[partition]:  # once a batch in progress is done with it
            state.close()

    def _note_failure(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or isinstance(task.exception(), PartitionFenced):
            return  # a fenced partition was let go on purpose
        if task.exception() is not None:
            self._failure = task.exception()
            log.error("partition processing failed", exc_info=self._failure)

    async def route_of(self, customer_id: str, partitions: int) -> Route | None:
        """SPEC §9's route from the state of the customer's partition (None: not held here, or no such
        customer).  Read between the steps that change the state (its effects' writes need not finish)."""
        partition = partition_of(customer_id.encode(), partitions)
        state = self.states.get(partition)
        if state is None:
            return None
        async with self._reading[partition]:
            return state.intake.core.route_of(customer_id)

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
                async with self._reading[partition]:
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
        await self.publisher.fence(partition)  # before reading the tails: nobody else adds to them after
        source = partition_source(TOUCHPOINTS, partition)
        recorded = await asyncio.to_thread(self.ledger.recorded_position, source)
        tails = await output_tails(self.settings.bootstrap, OUTPUT_TOPICS, partition)
        assert self._scratch is not None
        scratch = new_scratch(self._scratch, self._budget, prefix=f"partition-{partition}-")
        try:
            snapshot = None if self.checkpoints is None else await self.checkpoints.restore(source, scratch)
        except BaseException:
            scratch.close()
            raise
        restored = None if snapshot is None else (snapshot.intake, snapshot.last_offset)
        state = PartitionLedger(TOUCHPOINTS, partition, self.settings.policy, recorded, tails, restored, scratch)
        if snapshot is not None and self.checkpoints is not None:
            self.checkpoints.saved[partition] = snapshot.last_offset
        self._checkpointed_at[partition] = time.monotonic()
        self._rebuilding[partition] = state
        try:
            messages = await self._replay(state, start=None if snapshot is None else state.next_offset, until=until)
        finally:
            del self._rebuilding[partition]
        seconds = time.perf_counter() - started
        self.metrics.rebuild_seconds.observe(seconds)
        self.metrics.restored_messages.labels(*self.metrics.of(partition)).set(messages)
        self.metrics.position.labels(*self.metrics.of(partition)).set(state.made_up_to + 1)
        self.metrics.restore_seconds.labels(*self.metrics.of(partition)).set(seconds)
        log.info(
            "partition state restored",
            extra={"partition": partition, "checkpoint": None if snapshot is None else snapshot.last_offset,
                   "messages": messages, "ledger_position": recorded, "resume_offset": until,
                   "seconds": round(seconds, 3)},
        )
        return state

    async def _replay(self, state: PartitionLedger, start: int | None, until: int | None) -> int:
        """Process the partition's history from ``start`` to ``until`` (defaults: beginning, end now)."""
        messages = 0
        with chunked_collection():  # a long history builds a large, long-lived state, as a replay does
            async for chunk in history(self.settings.bootstrap, TOUCHPOINTS, state.partition, REBUILD_CHUNK, start, until):
                async with self._reading[state.partition]:
                    effects = await asyncio.to_thread(state.process, chunk)
                await self._make(state, effects)
                settle()
                messages += len(chunk)
        if until is not None and until > state.next_offset:
            # Offsets with no committed message (transaction markers, aborted sends): nothing to make.
            state.next_offset = until
            state.made_up_to = until - 1
        return messages

    async def _make(self, state: PartitionLedger, effects: Effects) -> None:
        ledger = self.ledger
        assert ledger is not None
        if effects.facts:
            sealed = await retrying("ledger store", lambda: asyncio.to_thread(
                seal_stretch, ledger, state.source, state.recorded, effects.facts, effects.erasures,
            ))
            effects.outgoing.extend(facts_messages(sealed, state.policy_header, self.key_store))
        written = await self._store(state, effects)
        try:
            await self.publisher.publish(state.partition, effects.outgoing)
        except PartitionFenced:
            self._let_go(state.partition)
            raise
        state.done(effects)
        for customer_id, view in effects.owners.items():
            self.owners(customer_id, view)
        self.metrics.observe(state.partition, effects, written)
        if self.checkpoints is not None and (
            effects.erasures
            or time.monotonic() - self._checkpointed_at.get(state.partition, 0.0) >= self.settings.checkpoint_seconds
        ):
            await self._checkpoint(state, erased=bool(effects.erasures))

    async def _checkpoint(self, state: PartitionLedger, *, erased: bool = False) -> None:
        """Every effect up to the state's next offset is durable: checkpoint it."""
        assert self.checkpoints is not None
        started = time.perf_counter()
        async with self._reading[state.partition]:
            await self.checkpoints.save(state, erased=erased)
        self._checkpointed_at[state.partition] = time.monotonic()
        self.metrics.checkpoints.inc()
        self.metrics.checkpoint_seconds.observe(time.perf_counter() - started)

    async def _store(self, state: PartitionLedger, effects: Effects) -> int:
        ledger = self.ledger
        assert ledger is not None
        if state.recorded is not None and effects.last_offset <= state.recorded and not effects.erasures:
            return 0

        return await retrying(
            "ledger store",
            lambda: asyncio.to_thread(ledger.apply, effects.records, effects.erasures, state.source, effects.last_offset),
        )


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
