"""Per-partition queues between faust and the engine: faust hands a batch over and reads on while
earlier batches are made durable; the batches that queue up meanwhile are processed as one (bigger
batches under load, no waiting when idle), and a full queue makes faust wait (back-pressure)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from processors.kafka.reading import Incoming

QUEUED_BATCHES = 16
"""Batches waiting per partition at most; beyond, faust waits (back-pressure)."""
LARGEST_BATCH = 5_000
RELEASE_TIMEOUT_SECONDS = 30.0

Handler = Callable[[int, list[Incoming]], Awaitable[None]]


class PartitionQueues:
    def __init__(self, handle: Handler, on_done: Callable[[asyncio.Task[Any]], None]) -> None:
        self.handle = handle
        """Processes one partition's messages; called in order, one batch at a time per partition."""
        self.on_done = on_done
        """Called with each partition's processor task when it ends (a failure is the task's exception)."""
        self._queues: dict[int, asyncio.Queue[list[Incoming] | None]] = {}
        self._processors: dict[int, asyncio.Task[None]] = {}

    @property
    def partitions(self) -> set[int]:
        return set(self._processors)

    def full(self, partition: int) -> bool:
        return partition in self._queues and self._queues[partition].full()

    async def put(self, partition: int, messages: list[Incoming]) -> None:
        """Queue one partition's messages (in offset order); waits only while the queue is full."""
        queue = self._queues.get(partition)
        if queue is None:
            queue = self._queues[partition] = asyncio.Queue(QUEUED_BATCHES)
            task = self._processors[partition] = asyncio.create_task(self._process(partition, queue))
            task.add_done_callback(self.on_done)
        await queue.put(messages)

    async def finish(self, partitions: set[int]) -> None:
        """Let each partition's processor finish what is queued, then forget the partition."""
        finishing = []
        for partition in partitions:
            queue, processor = self._queues.pop(partition, None), self._processors.pop(partition, None)
            if queue is not None and processor is not None:
                finishing.append(asyncio.create_task(_finish(queue, processor)))
        if finishing:
            _, late = await asyncio.wait(finishing, timeout=RELEASE_TIMEOUT_SECONDS)
            for task in late:
                task.cancel()

    def drop(self, partition: int) -> None:
        """Forget the partition and what is queued for it, unprocessed."""
        queue = self._queues.pop(partition, None)
        self._processors.pop(partition, None)
        if queue is not None:
            while not queue.empty():
                queue.get_nowait()

    async def _process(self, partition: int, queue: asyncio.Queue[list[Incoming] | None]) -> None:
        while (messages := await queue.get()) is not None:
            # Whatever queued up meanwhile goes along: one store transaction, one round of acks.
            while not queue.empty() and len(messages) < LARGEST_BATCH:
                more = queue.get_nowait()
                if more is None:
                    await self.handle(partition, messages)
                    return
                messages = messages + more
            await self.handle(partition, messages)


async def _finish(queue: asyncio.Queue[list[Incoming] | None], processor: asyncio.Task[None]) -> None:
    """Let the processor finish its queue and end (the end mark waits for room in a full queue)."""
    try:
        await queue.put(None)
        await asyncio.wait([processor])
    except asyncio.CancelledError:
        processor.cancel()
        raise
