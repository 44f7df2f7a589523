"""The whole company: its regions simulated side by side, one process each, merged in time order.

Regions share nothing, so each runs on its own core; the merge is deterministic
(by second, then by line), so the output is the same whether the regions run in
processes or one after another in this one.
"""

from __future__ import annotations

import heapq
import multiprocessing
import queue
import signal
from collections.abc import Generator, Iterator
from itertools import islice
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue

from processors.runtime.child_process import die_with_parent
from simulator.company import Settings
from simulator.generate import region_lines

CHUNK_LINES = 4096
CHUNKS_IN_FLIGHT = 4  # per region: bounds the memory between a region and the merge


def simulate(settings: Settings, processes: bool = True) -> Generator[bytes, None, None]:
    """The company's events as JSONL lines (without newlines), in time order, bad input mixed in as configured."""
    if not processes or settings.regions == 1:
        streams = [region_lines(settings, region) for region in range(settings.regions)]
        for _, line in heapq.merge(*streams):
            yield line
        return
    context = multiprocessing.get_context("spawn")  # no fork: the caller may run threads (progress bars)
    queues: list[Queue[list[tuple[int, bytes]] | str | None]] = []
    workers: list[BaseProcess] = []
    try:
        for region in range(settings.regions):
            queues.append(context.Queue(CHUNKS_IN_FLIGHT))
            workers.append(context.Process(target=_produce, args=(settings, region, queues[-1]), daemon=True))
            workers[-1].start()
        for _, line in heapq.merge(*(_received(q, w) for q, w in zip(queues, workers))):
            yield line
    finally:
        for worker in workers:
            worker.terminate()
            worker.join()
        for q in queues:
            q.close()


def _produce(settings: Settings, region: int, out: Queue[list[tuple[int, bytes]] | str | None]) -> None:
    """A region's process: chunks of lines to ``out``, then None (or the error, as text)."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops us
    try:
        stream = region_lines(settings, region)
        while chunk := list(islice(stream, CHUNK_LINES)):
            out.put(chunk)
    except Exception as error:
        out.put(f"{type(error).__name__}: {error}")
        return
    out.put(None)


def _received(chunks: Queue[list[tuple[int, bytes]] | str | None], worker: BaseProcess) -> Iterator[tuple[int, bytes]]:
    while True:
        try:
            chunk = chunks.get(timeout=1.0)
        except queue.Empty:
            if not worker.is_alive():
                raise RuntimeError(f"a simulator process stopped unexpectedly (exit code {worker.exitcode})") from None
            continue
        if chunk is None:
            return
        if isinstance(chunk, str):
            raise RuntimeError(f"the simulator failed in a region process: {chunk}")
        yield from chunk
