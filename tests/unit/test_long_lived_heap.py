"""The garbage-collection regime of replays and the worker: cycles are still collected, the collector is
given back, and the long-lived state stays out of its way."""

import gc
import weakref

from processors.runtime.heap import LiveSettling, chunked_collection, settle


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_a_cycle_made_within_a_chunk_is_collected_at_settle() -> None:
    with chunked_collection():
        a, b = Node(), Node()
        a.other, b.other = b, a
        probe = weakref.ref(a)
        del a, b
        assert probe() is not None
        settle()
        assert probe() is None


def test_settling_without_collecting_freezes_even_a_cycle() -> None:
    with chunked_collection():
        a, b = Node(), Node()
        a.other, b.other = b, a
        probe = weakref.ref(a)
        frozen_before = gc.get_freeze_count()
        del a, b
        settle(collect=False)
        assert gc.get_freeze_count() >= frozen_before + 2
        gc.collect()
        assert probe() is not None  # frozen: the collector no longer looks at it


def test_what_a_block_built_stays_frozen_and_the_collector_comes_back_for_new_cycles() -> None:
    assert gc.isenabled()
    frozen_before = gc.get_freeze_count()
    with chunked_collection():
        kept = [Node() for _ in range(10)]
        settle()
        assert gc.get_freeze_count() >= frozen_before + len(kept)
        assert not gc.isenabled()
    assert gc.get_freeze_count() >= frozen_before + len(kept)
    assert gc.isenabled()
    a, b = Node(), Node()
    a.other, b.other = b, a
    probe = weakref.ref(a)
    del a, b
    gc.collect()
    assert probe() is None


def test_live_settling_freezes_what_survived_every_so_many_events() -> None:
    settling = LiveSettling(every=100)
    kept = [Node() for _ in range(10)]
    frozen_before = gc.get_freeze_count()
    settling.processed(60)
    assert gc.get_freeze_count() == frozen_before  # not yet
    settling.processed(60)
    assert gc.get_freeze_count() >= frozen_before + len(kept)


def test_overlapping_blocks_give_the_collector_back_when_the_last_one_ends() -> None:
    first, second = chunked_collection(), chunked_collection()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the second block is still open
    second.__exit__(None, None, None)
    assert gc.isenabled()
