"""What the core produces for every event: positions, facts for the analytics, ledger decisions, erasures.

The drivers and sinks read these; the core builds several per event, so they are
slotted dataclasses that are immutable by convention, not ``frozen``: a frozen
dataclass sets each field through ``object.__setattr__``, several times slower to
build (docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ledger.journeys import Handoff
from ledger.repeats import Repeat
from schemas.events import InputEvent, Touchpoint


@dataclass(slots=True)
class Position:
    """Where an input event came from: ``file:line`` or ``topic:partition`` and offset.

    ``seq`` orders events; it only has to increase along each customer's stream.
    """

    source: str
    offset: int
    seq: int


@dataclass(slots=True)
class TouchFact:
    touch: Touchpoint
    position: Position
    journey_id: str
    journey_key: str
    weight: float | None
    owner_before: str | None
    owner_match: bool | None
    """Handled by the owner in place just before the touch; None when not counted for continuity."""
    repeat: Repeat | None
    handoff: Handoff | None
    owner_after: str | None
    """The owner once the touch is applied: the customer's owner at its time, which ``spoc.handoffs`` carries."""


@dataclass(frozen=True, slots=True)
class ControlFact:
    event: InputEvent
    position: Position


@dataclass(slots=True)
class LedgerRecord:
    customer_id: str
    event: Any
    """A :class:`~ledger.relationship.Relationship` domain event."""
    position: Position


@dataclass(frozen=True, slots=True)
class Erasure:
    customer_id: str
    relationship_id: UUID | None
    position: Position
