"""Input events of SPEC §1, schema version 1, as typed msgspec structs.

These structs are the schema: the JSON Schema file next to this module is
generated from them (``python -m schemas``) and a test keeps the two in step.
Unknown top-level fields are ignored (tolerant reader); the raw message stays in
the log of record (the Kafka topic or the input file).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec

SCHEMA_VERSION = 1

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Timestamp = Annotated[
    datetime,
    msgspec.Meta(
        tz=True,
        description="RFC 3339 timestamp with an offset, in the years 0001-9999 once converted to UTC; naive times are rejected",
    ),
]
OUT_OF_RANGE = "is outside the years 0001-9999 once converted to UTC"
"""Part of the message of an instant that passes RFC 3339 but has no UTC year (SPEC §1)."""


def check_instant(field: str, value: datetime) -> None:
    """Refuse an instant whose UTC year is 0 or 10000: every consumer converts to UTC and would fail."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"`{field}` {value.isoformat()} {OUT_OF_RANGE}") from None
Slug = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")]
Csat = Annotated[int, msgspec.Meta(ge=1, le=5)]
Sentiment = Annotated[float, msgspec.Meta(ge=-1.0, le=1.0)]
Revenue = Annotated[float, msgspec.Meta(ge=0.0)]
SchemaVersion = Literal[1]

Channel = Literal["phone", "chat", "email", "visit", "portal", "sms", "social", "video", "other"]
Direction = Literal["inbound", "outbound"]
Kind = Literal["inquiry", "purchase", "complaint", "follow_up", "outreach", "cancellation", "other"]
Outcome = Literal["resolved", "unresolved", "transferred", "redirected", "abandoned", "pending"]


class Touchpoint(msgspec.Struct, frozen=True):
    """A contact between the company and a customer (``type`` absent or ``touchpoint``)."""

    event_id: Id
    occurred_at: Timestamp
    customer_id: Id
    channel: Channel
    direction: Direction
    department: Slug
    # Required key; null means self-service or a bot.
    employee_id: Id | None
    type: Literal["touchpoint"] = "touchpoint"
    schema_version: SchemaVersion = 1
    case_id: str | None = None
    topic: str | None = None
    kind: Kind | None = None
    outcome: Outcome | None = None
    transferred_to_department: str | None = None
    transferred_to_employee: str | None = None
    context_passed: bool | None = None
    """On a ``transferred`` touch: the case's context went along (a warm transfer, SPEC §4)."""
    csat: Csat | None = None
    sentiment: Sentiment | None = None
    revenue: Revenue | None = None
    attributes: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        check_instant("occurred_at", self.occurred_at)


class _ControlEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Fields every control event has; ``type`` is the tag."""

    event_id: Id
    occurred_at: Timestamp
    schema_version: SchemaVersion = 1

    def __post_init__(self) -> None:
        check_instant("occurred_at", self.occurred_at)


class CustomerChurned(_ControlEvent, frozen=True, kw_only=True, tag="customer_churned"):
    customer_id: Id


class EmployeeDeparted(_ControlEvent, frozen=True, kw_only=True, tag="employee_departed"):
    """Broadcast: applies to every customer at its position in the input."""

    employee_id: Id


class OwnerPinned(_ControlEvent, frozen=True, kw_only=True, tag="owner_pinned"):
    customer_id: Id
    employee_id: Id


class OwnerUnpinned(_ControlEvent, frozen=True, kw_only=True, tag="owner_unpinned"):
    customer_id: Id


class CustomerErased(_ControlEvent, frozen=True, kw_only=True, tag="customer_erased"):
    customer_id: Id


class EmployeeAway(_ControlEvent, frozen=True, kw_only=True, tag="employee_away"):
    """Broadcast: the employee is away from its time until ``employee_returned`` or ``until``
    (SPEC §9). Ownership stays; routing passes them by."""

    employee_id: Id
    until: Timestamp | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.until is not None:
            check_instant("until", self.until)


class EmployeeReturned(_ControlEvent, frozen=True, kw_only=True, tag="employee_returned"):
    """Broadcast: the employee is back (SPEC §9)."""

    employee_id: Id


ControlEvent = (
    CustomerChurned | EmployeeDeparted | OwnerPinned | OwnerUnpinned | CustomerErased | EmployeeAway | EmployeeReturned
)
BROADCAST_TYPES = ("employee_departed", "employee_away", "employee_returned")
"""Control events that concern every customer: published to every partition, applied by each."""
InputEvent = Touchpoint | ControlEvent

CONTROL_TYPES: dict[str, type[msgspec.Struct]] = {
    "customer_churned": CustomerChurned,
    "employee_departed": EmployeeDeparted,
    "owner_pinned": OwnerPinned,
    "owner_unpinned": OwnerUnpinned,
    "customer_erased": CustomerErased,
    "employee_away": EmployeeAway,
    "employee_returned": EmployeeReturned,
}
EVENT_TYPES = ("touchpoint", *CONTROL_TYPES)


def event_type(event: InputEvent) -> str:
    """The SPEC's ``type`` value of a decoded event."""
    return event.type if isinstance(event, Touchpoint) else type(event).__struct_config__.tag  # type: ignore[return-value]  # every control tag is a str
