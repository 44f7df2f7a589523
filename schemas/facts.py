"""``spoc.facts``, version 1: what the live worker ships to the DuckDB sink for each input message.

The worker (``processors/live/outputs.py``) encodes these structs and the sink
(``processors/project.py``) decodes them; both sides name every field.  A row's
fields are named after the columns of its fact table (``projections/tables.sql``)
and travel as a JSON array in that order (``array_like``), as compact as bare rows;
``tests/unit/test_facts_wire.py`` fails when a table's columns and its struct part,
so a column added to a table changes this format only through a new version here.
A facts message is a JSON array of :class:`InputFactsV1`, one per input message that
produced facts, with the header ``spoc-facts-version`` (absent on the first workers'
messages, which are version 1 too).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

FACTS_VERSION = b"3"
"""2: follow-up transitions (``follow_ups``) added; a version-1 sink would drop them.
3: each customer's facts sealed with the customer's key (``sealed``); a version-2 sink would drop them."""


class TouchFactV1(msgspec.Struct, array_like=True):
    """A row of ``touchpoints``."""

    event_id: str
    occurred_at: datetime
    customer_id: str
    schema_version: int
    channel: str
    direction: str
    department: str
    employee_id: str | None
    case_id: str | None
    topic: str | None
    kind: str | None
    outcome: str | None
    transferred_to_department: str | None
    transferred_to_employee: str | None
    csat: int | None
    sentiment: float | None
    revenue: float | None
    attributes: str | None
    """The touchpoint's ``attributes`` as JSON text, written back as they came."""
    journey_id: str
    journey_key: str
    weight: float | None
    owner_before: str | None
    owner_match: bool | None
    source: str
    position: int
    seq: int
    context_passed: bool | None = None
    """Added with warm transfers; facts written before carry none."""


class HandoffFactV1(msgspec.Struct, array_like=True):
    """A row of ``handoff_facts``."""

    customer_id: str
    journey_id: str
    from_event_id: str
    to_event_id: str
    from_department: str
    to_department: str
    from_employee_id: str | None
    to_employee_id: str | None
    kind: str
    cross_department: bool
    reexplained: bool
    ping_pong: bool
    gap_seconds: float
    occurred_at: datetime
    seq: int


class RepeatFactV1(msgspec.Struct, array_like=True):
    """A row of ``repeat_facts``."""

    event_id: str
    previous_event_id: str
    customer_id: str
    journey_key: str
    gap_seconds: float
    occurred_at: datetime
    seq: int


class ControlFactV1(msgspec.Struct, array_like=True):
    """A row of ``control_events``."""

    event_id: str
    type: str
    occurred_at: datetime
    customer_id: str | None
    employee_id: str | None
    source: str
    position: int
    seq: int
    until: datetime | None = None
    """An ``employee_away``'s end (added with SPEC §9; facts written before carry none)."""


class LedgerFactV1(msgspec.Struct, array_like=True):
    """A row of ``ledger_events``."""

    relationship_id: str
    version: int
    customer_id: str
    event_type: str
    occurred_at: datetime
    trigger_event_id: str | None
    previous_owner_id: str | None
    owner_id: str | None
    employee_id: str | None
    reason: str | None
    affinities: str | None
    """The decision's affinities as JSON text."""
    source: str
    position: int
    seq: int


class RejectedFactV1(msgspec.Struct, array_like=True):
    """A row of ``rejected_events`` but ``raw_text``, which the sink derives from ``raw`` (base64 on the wire)."""

    reason: str
    detail: str
    field: str | None
    raw: bytes
    source: str
    position: int
    seq: int


class FollowUpFactV1(msgspec.Struct, array_like=True):
    """A row of ``follow_up_facts``."""

    follow_up_id: str
    customer_id: str
    owner_id: str
    kind: str
    anchor_event_id: str
    journey_id: str | None
    due_at: datetime
    status: str
    closed_at: datetime | None
    closed_event_id: str | None
    seq: int
    step: int


class ErasureFactV1(msgspec.Struct):
    """A ``customer_erased`` at this position: the sink deletes the customer's rows before it."""

    customer_id: str
    seq: int
    source: str = ""
    """Where the erasure was read (empty on the first workers' messages: every source then)."""


class SealedFactsV1(msgspec.Struct, array_like=True):
    """One customer's part of an input message's facts: an :class:`InputFactsV1` as JSON, sealed with the
    customer's key (``ledger/keys.py``), which an erasure deletes."""

    key: str
    """The key's id in the ledger store."""
    box: bytes


class InputFactsV1(msgspec.Struct, omit_defaults=True):
    """Everything one input message produced for the sink.

    From version 3 the rows of a customer travel in ``sealed``; what stays outside is no
    customer's: the instant, an erasure, an employee's control event, a rejected line
    that names no customer, and, for one that does, its row with the line blanked as an
    erasure would leave it (the sealed part has it whole).
    """

    at: datetime | None = None
    """The event's ``occurred_at``: the sink keeps the latest as the views' default ``as_of``."""
    touch: TouchFactV1 | None = None
    handoff: HandoffFactV1 | None = None
    repeat: RepeatFactV1 | None = None
    control: ControlFactV1 | None = None
    ledger: list[LedgerFactV1] = msgspec.field(default_factory=list)
    rejected: RejectedFactV1 | None = None
    erasure: ErasureFactV1 | None = None
    follow_ups: list[FollowUpFactV1] = msgspec.field(default_factory=list)
    sealed: list[SealedFactsV1] = msgspec.field(default_factory=list)


ROW_STRUCTS: dict[str, type[msgspec.Struct]] = {
    "touchpoints": TouchFactV1,
    "handoff_facts": HandoffFactV1,
    "repeat_facts": RepeatFactV1,
    "control_events": ControlFactV1,
    "ledger_events": LedgerFactV1,
    "rejected_events": RejectedFactV1,
    "follow_up_facts": FollowUpFactV1,
}
"""Each fact table and the struct its rows travel as."""
