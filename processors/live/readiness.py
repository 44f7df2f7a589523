"""The worker's ``/healthz`` and ``/readyz``: whether the process serves, and whether it serves current answers.

Ready means: no rebalance or table recovery in progress, every input partition it holds restored (its state
rebuilt or taken from a checkpoint), and each of them read to within ``max_lag`` messages of its end.  A worker
that holds no partition (more workers than partitions) is ready: it stands by.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_LAG = 10_000
"""Messages a held partition may be behind its end for the worker to count as ready (``--ready-max-lag``)."""


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reasons: tuple[str, ...]
    lag: dict[int, int | None] = field(default_factory=dict)
    """Per held input partition, messages not yet processed (None: its end is not known yet)."""

    def as_json(self) -> dict[str, Any]:
        return {"ready": self.ready, "reasons": list(self.reasons), "lag": {str(p): n for p, n in sorted(self.lag.items())}}


def readiness(
    assigned_once: bool, rebalancing: bool, held: Iterable[int], next_offsets: dict[int, int],
    end_of: Callable[[int], int | None], max_lag: int,
) -> Readiness:
    """``assigned_once``: the group has assigned the worker its partitions at least once; ``held``: the input
    partitions assigned to it now; ``next_offsets``: the next offset to process of each restored one; ``end_of``:
    a partition's end as the consumer last saw it (None: not seen yet)."""
    reasons: list[str] = []
    if not assigned_once:
        reasons.append("the worker has not joined its consumer group yet")
    if rebalancing:
        reasons.append("a rebalance or the owners table's recovery is in progress")
    lag: dict[int, int | None] = {}
    for partition in sorted(held):
        if partition not in next_offsets:
            reasons.append(f"partition {partition} is being restored")
            lag[partition] = None
            continue
        end = end_of(partition)
        if end is None:
            lag[partition] = None
            reasons.append(f"partition {partition}: its end is not known yet")
            continue
        behind = lag[partition] = max(0, end - next_offsets[partition])
        if behind > max_lag:
            reasons.append(f"partition {partition} is {behind:,} messages behind (more than {max_lag:,})")
    return Readiness(not reasons, tuple(reasons), lag)
