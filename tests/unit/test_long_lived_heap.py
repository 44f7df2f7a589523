"""The replay's garbage-collection regime: cycles are still collected, and the collector is given back."""

import gc
import weakref

from processors.long_lived_heap import chunked_collection, settle


class Node:
    def __init__(self) -> None:
        self.other: "Node | None" = None


def test_a_cycle_made_within_a_chunk_is_collected_at_settle() -> None:
    with chunked_collection():
        a, b = Node(), Node()
        a.other, b.other = b, a
        probe = weakref.ref(a)
        del a, b
        assert probe() is not None
        settle()
        assert probe() is None


def test_the_survivors_are_frozen_until_the_block_ends() -> None:
    assert gc.isenabled()
    with chunked_collection():
        kept = [Node() for _ in range(10)]
        settle()
        assert gc.get_freeze_count() >= len(kept)
        assert not gc.isenabled()
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()


def test_overlapping_blocks_give_the_collector_back_when_the_last_one_ends() -> None:
    first, second = chunked_collection(), chunked_collection()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the second block is still open
    second.__exit__(None, None, None)
    assert gc.isenabled() and gc.get_freeze_count() == 0
