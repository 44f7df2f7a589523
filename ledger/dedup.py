"""Duplicate deliveries vs reused event ids (SPEC §1).

An ``event_id`` seen before with the same content is a duplicate delivery
(processed once, counted); with different content it is a conflict (rejected).

The index keeps two 64-bit hashes per event id, not the ids: the newest ones in a
dict, older ones folded into sorted numpy arrays (16 bytes an id instead of ~120
in a dict).  A bitmap in front says "certainly new" for most new ids, so the sorted
arrays are searched only for ids that may have been seen.  The hashes are the
same in every process (xxh3), so an index can be saved and restored with the
replay state.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from schemas.validation import digest64

RECENT_LIMIT = 1 << 16
FILTER_BITS = 1 << 27  # 16 MiB: under 8 % false "maybe seen" at 10M ids
FOLD_BLOCK = 1 << 16  # old entries merged at a time when folding: the fold's scratch memory


class Verdict(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


class DedupIndex:
    __slots__ = ("_digests", "_filter", "_filter_mask", "_keys", "_recent", "_size")

    def __init__(self, filter_bits: int = FILTER_BITS) -> None:
        """``filter_bits`` (a power of two) sizes the bitmap: ~16 bits per id keeps false hits rare."""
        self._recent: dict[int, int] = {}
        self._keys = np.empty(0, dtype=np.int64)
        self._digests = np.empty(0, dtype=np.int64)
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
        # Unpickled arrays may be views of the pickle's buffer; a fold resizes them in place.
        self._keys, self._digests = self._keys.copy(), self._digests.copy()

    @property
    def arrays_nbytes(self) -> int:
        """The bytes of the sorted arrays: what the index grows by, 16 an event id."""
        return self._keys.nbytes + self._digests.nbytes

    def check(self, event_id: str, digest: int) -> Verdict:
        """Classify an event and remember it if new."""
        key = digest64(event_id.encode())
        seen = self._recent.get(key)
        if seen is None:
            bit = key & self._filter_mask
            byte, mask = bit >> 3, 1 << (bit & 7)
            if self._filter[byte] & mask:
                seen = self._folded(key)
            else:
                self._filter[byte] |= mask
        if seen is None:
            self._recent[key] = digest
            self._size += 1
            if len(self._recent) >= RECENT_LIMIT:
                self._fold()
            return Verdict.NEW
        return Verdict.DUPLICATE if seen == digest else Verdict.CONFLICT

    def _folded(self, key: int) -> int | None:
        keys = self._keys
        at = int(np.searchsorted(keys, key))
        if at < len(keys) and keys[at] == key:
            return int(self._digests[at])
        return None

    def _fold(self) -> None:
        """Merge the recent dict into the sorted arrays, in place.

        One ``np.insert`` over the whole arrays would copy both at every fold, so the peak
        would sit ~8 bytes an id above what stays.  Instead the arrays grow by ``resize``
        (the allocator remaps a large array's pages rather than copying them) and are merged
        a block at a time from the back: each old block, with the new entries that go among
        it, lands at or past where it was, over entries already moved.
        """
        recent_keys = np.fromiter(self._recent.keys(), dtype=np.int64, count=len(self._recent))
        recent_digests = np.fromiter(self._recent.values(), dtype=np.int64, count=len(self._recent))
        order = np.argsort(recent_keys, kind="stable")
        recent_keys, recent_digests = recent_keys[order], recent_digests[order]
        at = np.searchsorted(self._keys, recent_keys)
        high, upper = len(self._keys), len(recent_keys)  # old entries [0, high) and new [0, upper) not yet placed
        self._keys.resize(high + upper, refcheck=False)
        self._digests.resize(high + upper, refcheck=False)
        while True:
            low = max(high - FOLD_BLOCK, 0)
            lower = int(np.searchsorted(at, low))  # the new entries [lower, upper) go among old [low, high)
            for merged, new in ((self._keys, recent_keys), (self._digests, recent_digests)):
                merged[low + lower:high + upper] = np.insert(merged[low:high], at[lower:upper] - low, new[lower:upper])
            if low == 0:
                break
            high, upper = low, lower
        self._recent = {}
