"""What ``spoc replay`` prints when it is done, and how the parts of a split add up."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any


def _count(label: str, shown_as: str | None = None) -> Any:
    """A count that parts add up, printed as ``label``; ``shown_as`` formats it with the others."""
    return field(default=0, metadata={"label": label, "shown_as": shown_as})


@dataclass
class ReplaySummary:
    inputs_held: int = _count("inputs held already, skipped")
    accepted: int = _count("accepted")
    duplicates: int = _count("duplicates")
    rejected: Counter[str] = field(default_factory=Counter, metadata={"label": "rejected"})
    """By reason; printed as the total, then one row per reason."""
    customers: int = _count("customers")
    owner_changes: int = _count("owner changes")
    handoffs: int = _count("handoffs", "{handoffs:,} ({silo_handoffs:,} across departments)")
    silo_handoffs: int = field(default=0, metadata={"label": None})
    customers_erased: int = _count("customers erased")
    ledger_events_written: int = _count("ledger events written")
    seconds: float = 0.0
    """The run's wall time: set once by the replay, never added up."""

    @property
    def lines(self) -> int:
        return self.accepted + self.duplicates + sum(self.rejected.values())

    @property
    def events_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0

    def add(self, part: ReplaySummary) -> None:
        """Add the summary of a pass over other customers (another partition)."""
        for counted in fields(self):
            if "label" in counted.metadata:
                setattr(self, counted.name, getattr(self, counted.name) + getattr(part, counted.name))

    def render(self) -> str:
        rows = [("lines read", f"{self.lines:,}")]
        for counted in fields(self):
            label = counted.metadata.get("label")
            if label is None:
                continue
            value = getattr(self, counted.name)
            if isinstance(value, Counter):
                rows.append((label, f"{sum(value.values()):,}"))
                rows.extend((f"  {reason}", f"{count:,}") for reason, count in sorted(value.items()))
            else:
                rows.append((label, (counted.metadata["shown_as"] or f"{{{counted.name}:,}}").format_map(vars(self))))
        rows.append(("time", f"{self.seconds:.2f} s ({self.events_per_second:,.0f} events/s)"))
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
