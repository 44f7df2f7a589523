"""Duplicate deliveries vs reused event ids (SPEC §1).

An ``event_id`` seen before with the same content is a duplicate delivery
(processed once, counted); with different content it is a conflict (rejected).

The index keeps two 64-bit hashes per event id, not the ids: the newest ones in a
dict, older ones folded into a :class:`FoldedIds` store: sorted numpy arrays in
memory (16 bytes an id instead of ~120 in a dict) by default, or a store on disk
that a driver gives (``processors/runtime/state_store.py``).  A bitmap in front
says "certainly new" for most new ids, so the folded ids are searched only for ids
that may have been seen.  The hashes are the same in every process (xxh3), so an
index can be saved and restored with the replay state.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from typing import Protocol

import numpy as np

from schemas.validation import digest64

RECENT_LIMIT = 1 << 16
FILTER_BITS = 1 << 27  # 16 MiB: under 8 % false "maybe seen" at 10M ids
FOLD_BLOCK = 1 << 16  # old entries merged at a time when folding: the fold's scratch memory
CHUNK_IDS = 1 << 16  # ids a chunk of a snapshot holds


class Verdict(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


class FoldedIds(Protocol):
    """Where the index keeps the hashes of the ids it has folded: key hash -> content digest."""

    def find(self, key: int) -> int | None: ...

    def add(self, keys: np.ndarray, digests: np.ndarray) -> None:
        """Add new ids (``keys`` sorted, none held already)."""

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every id held, as (keys, digests) arrays of a bounded size."""
        ...

    @property
    def nbytes(self) -> int: ...


class SortedIds:
    """Folded ids in two sorted arrays in memory: 16 bytes an id."""

    __slots__ = ("_digests", "_keys")

    def __init__(self) -> None:
        self._keys = np.empty(0, dtype=np.int64)
        self._digests = np.empty(0, dtype=np.int64)

    def __getstate__(self) -> dict[str, object]:
        return {"_keys": self._keys, "_digests": self._digests}

    def __setstate__(self, state: dict[str, np.ndarray]) -> None:
        # Unpickled arrays may be views of the pickle's buffer; a fold resizes them in place.
        self._keys, self._digests = state["_keys"].copy(), state["_digests"].copy()

    @property
    def nbytes(self) -> int:
        return self._keys.nbytes + self._digests.nbytes

    def find(self, key: int) -> int | None:
        keys = self._keys
        at = int(np.searchsorted(keys, key))
        if at < len(keys) and keys[at] == key:
            return int(self._digests[at])
        return None

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(self._keys), CHUNK_IDS):
            yield self._keys[start:start + CHUNK_IDS], self._digests[start:start + CHUNK_IDS]

    def add(self, keys: np.ndarray, digests: np.ndarray) -> None:
        """Merge sorted new ids into the arrays, in place.

        One ``np.insert`` over the whole arrays would copy both at every fold, so the peak
        would sit ~8 bytes an id above what stays.  Instead the arrays grow by ``resize``
        (the allocator remaps a large array's pages rather than copying them) and are merged
        a block at a time from the back: each old block, with the new entries that go among
        it, lands at or past where it was, over entries already moved.
        """
        at = np.searchsorted(self._keys, keys)
        high, upper = len(self._keys), len(keys)  # old entries [0, high) and new [0, upper) not yet placed
        self._keys.resize(high + upper, refcheck=False)
        self._digests.resize(high + upper, refcheck=False)
        while True:
            low = max(high - FOLD_BLOCK, 0)
            lower = int(np.searchsorted(at, low))  # the new entries [lower, upper) go among old [low, high)
            for merged, new in ((self._keys, keys), (self._digests, digests)):
                merged[low + lower:high + upper] = np.insert(merged[low:high], at[lower:upper] - low, new[lower:upper])
            if low == 0:
                break
            high, upper = low, lower


class DedupIndex:
    __slots__ = ("_filter", "_filter_mask", "_recent", "_size", "folded")

    def __init__(self, filter_bits: int = FILTER_BITS, folded: FoldedIds | None = None) -> None:
        """``filter_bits`` (a power of two) sizes the bitmap: ~16 bits per id keeps false hits rare."""
        self._recent: dict[int, int] = {}
        self.folded: FoldedIds = SortedIds() if folded is None else folded
        self._filter = bytearray(filter_bits // 8)
        self._filter_mask = filter_bits - 1
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __getstate__(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, object]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def swap_folded(self, folded: FoldedIds | None = None) -> FoldedIds:
        """Keep the folded ids in ``folded`` from now on (default: new, empty, in memory); return the old."""
        old, self.folded = self.folded, SortedIds() if folded is None else folded
        return old

    def check(self, event_id: str, digest: int) -> Verdict:
        """Classify an event and remember it if new."""
        key = digest64(event_id.encode())
        seen = self._recent.get(key)
        if seen is None:
            bit = key & self._filter_mask
            byte, mask = bit >> 3, 1 << (bit & 7)
            if self._filter[byte] & mask:
                seen = self.folded.find(key)
            else:
                self._filter[byte] |= mask
        if seen is None:
            self._recent[key] = digest
            self._size += 1
            if len(self._recent) >= RECENT_LIMIT:
                self._fold()
            return Verdict.NEW
        return Verdict.DUPLICATE if seen == digest else Verdict.CONFLICT

    def _fold(self) -> None:
        """Move the recent dict into the folded ids."""
        keys = np.fromiter(self._recent.keys(), dtype=np.int64, count=len(self._recent))
        digests = np.fromiter(self._recent.values(), dtype=np.int64, count=len(self._recent))
        order = np.argsort(keys, kind="stable")
        self.folded.add(keys[order], digests[order])
        self._recent = {}
