"""Where an output message came from, in its headers: the marks that make publishing resumable.

Every message the worker publishes carries the input position it came from
(``spoc-offset``) and its index among that position's messages on its topic
(``spoc-index``).  One worker writes each output partition (output partition =
input partition), so the last message of an output partition says exactly how
far publishing got: after a crash the worker regenerates the lost suffix, nothing
more, and the sink skips what it has already applied.
"""

from __future__ import annotations

from dataclasses import dataclass

OFFSET_HEADER = "spoc-offset"
INDEX_HEADER = "spoc-index"
POLICY_HEADER = "spoc-policy"
"""On facts messages: the worker's policy as JSON, so the sink's views use the windows its decisions did."""
FACTS_VERSION_HEADER = "spoc-facts-version"
"""On facts messages: the version of their format (``schemas/facts.py``); absent means 1."""
KEY_STORE_HEADER = "spoc-key-store"
"""On facts messages: the identity of the ledger store that keeps the keys of their sealed parts."""

Mark = tuple[int, int]
"""(input offset, index): the order of a partition's output messages on one topic."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    mark: Mark


def beyond(mark: Mark, tail: Mark | None) -> bool:
    """Whether a message marked ``mark`` is past an output partition's ``tail`` (not yet published)."""
    return tail is None or mark > tail


def mark_of(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> Mark | None:
    found = dict(headers)
    if OFFSET_HEADER not in found or INDEX_HEADER not in found:
        return None
    return int(found[OFFSET_HEADER]), int(found[INDEX_HEADER])
