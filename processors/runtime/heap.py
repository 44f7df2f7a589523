"""Garbage collection for drivers that build up a large, long-lived heap.

The ledger core keeps every customer's working memory (affinities, journeys,
the aggregate) for the whole run: millions of objects that never become garbage.
CPython's cyclic collector still traverses them again and again as they age,
which measured as a third of a replay's time (docs/performance.md).  A driver that processes in chunks can
instead collect the young objects once per chunk and then freeze the survivors
(``gc.freeze``), so later collections never look at them again: cycles made
within a chunk are still found, and the cost no longer grows with the heap.  A
file replay, whose chunks make no cycles at all, freezes without collecting
(``settle(collect=False)``): even collecting only the young objects traversed
each chunk's new state once, a few per cent of its time.

What a block built stays frozen after it: the live worker goes on from a rebuilt
state, and when that state was unfrozen, a full collection over 1M events' worth of
it took 2.3-3.0 s, about every 50 s of live traffic after the rebuild.  The
live path then settles every :data:`LIVE_SETTLE_EVENTS` (:class:`LiveSettling`),
so the state it adds is frozen too.  The price: a cycle that was alive at a settle
and dies later is never collected.  The ledger's state has no cycles (it is freed
by reference counting when a partition goes, frozen or not); the rest is the
few framework objects alive at that moment.  At exit everything is unfrozen, so
the interpreter's last collection frees it all (DuckDB's bindings report leaked
objects otherwise).
"""

from __future__ import annotations

import atexit
import gc
from collections.abc import Iterator
from contextlib import contextmanager

_open_blocks = 0
_enabled_before = True
LIVE_SETTLE_EVENTS = 20_000
atexit.register(gc.unfreeze)


@contextmanager
def chunked_collection() -> Iterator[None]:
    """Within the block, collection happens only where :func:`settle` is called; what survives it stays frozen.

    Blocks may overlap (a worker rebuilds several partitions at once, as asyncio
    tasks of one thread): the collector comes back when the last one ends.
    """
    global _open_blocks, _enabled_before
    if _open_blocks == 0:
        _enabled_before = gc.isenabled()
        gc.disable()
    _open_blocks += 1
    try:
        yield
    finally:
        _open_blocks -= 1
        if _open_blocks == 0:
            settle()
            if _enabled_before:
                gc.enable()


def settle(*, collect: bool = True) -> None:
    """Collect what the last chunk left as garbage and freeze what survived it.

    ``collect=False`` freezes without collecting, for a driver whose chunks make no
    reference cycles (a file replay: tested), since the collection traverses every
    object the chunk added to the long-lived state, a few per cent of a replay's time.  A cycle
    it did make would stay in memory until the process ends.
    """
    if collect:
        gc.collect(1)
    gc.freeze()


class LiveSettling:
    """For a driver that goes on processing with the collector on: settle every ``every`` events."""

    def __init__(self, every: int = LIVE_SETTLE_EVENTS) -> None:
        self.every = every
        self._since = 0

    def processed(self, events: int) -> None:
        self._since += events
        if self._since >= self.every:
            self._since = 0
            settle()
