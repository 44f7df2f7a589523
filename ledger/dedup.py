"""Duplicate deliveries vs reused event ids (SPEC §1).

An ``event_id`` seen before with the same content is a duplicate delivery
(processed once, counted); with different content it is a conflict (rejected).
The index keeps two 64-bit integers per event id, not the ids themselves; they
are Python's seeded hashes, so an index lives in one process.
"""

from __future__ import annotations

from enum import Enum


class Verdict(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


class DedupIndex:
    __slots__ = ("_digests",)

    def __init__(self) -> None:
        self._digests: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._digests)

    def check(self, event_id: str, digest: int) -> Verdict:
        """Classify an event and remember it if new."""
        key = hash(event_id)
        seen = self._digests.get(key)
        if seen is None:
            self._digests[key] = digest
            return Verdict.NEW
        return Verdict.DUPLICATE if seen == digest else Verdict.CONFLICT
