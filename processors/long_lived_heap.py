"""Garbage collection for drivers that build up a large, long-lived heap.

The ledger core keeps every customer's working memory (affinities, journeys,
the aggregate) for the whole run: millions of objects that never become garbage.
CPython's cyclic collector still traverses them again and again as they age,
which measured as a third of a replay's time (200k events: 35k/s with the
default collector, 50k/s without it).  A driver that processes in chunks can
instead collect the young objects once per chunk and then freeze the survivors
(``gc.freeze``), so later collections never look at them again: cycles made
within a chunk are still found, and the cost no longer grows with the heap.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_open_blocks = 0
_enabled_before = True


@contextmanager
def chunked_collection() -> Iterator[None]:
    """Within the block, collection happens only where :func:`settle` is called.

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
            gc.unfreeze()
            if _enabled_before:
                gc.enable()


def settle() -> None:
    """Collect what the last chunk left as garbage and freeze what survived it."""
    gc.collect(1)
    gc.freeze()
