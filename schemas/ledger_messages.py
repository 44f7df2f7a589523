"""What the worker publishes: every ledger event, the owner-changed, follow-up and handoff notification contracts.

``spoc.owner-changed`` is the stable contract for downstream services (its JSON
Schema is ``owner-changed.v1.schema.json``); ``spoc.relationship-events`` carries
every ledger decision in the same envelope.  ``ledger_event_id`` is stable
across re-deliveries and restarts: receivers deduplicate by it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

OwnerReason = Literal[
    "first_productive_contact", "affinity", "owner_departed", "owner_departed_unassigned", "pinned",
]


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class OwnerChangedV1(msgspec.Struct, kw_only=True):
    """A customer got a new single point of contact (or, after a departure, none)."""

    schema_version: Literal[1] = 1
    ledger_event_id: Annotated[str, _doc("`<relationship_id>:<version>`: the idempotency key of this decision")]
    event_type: Annotated[
        Literal["OwnerAssigned", "OwnerChanged"],
        _doc("`OwnerAssigned` for a customer's first owner, `OwnerChanged` for every later change"),
    ]
    customer_id: str
    previous_owner_id: Annotated[str | None, _doc("null for the first assignment")]
    owner_id: Annotated[str | None, _doc("null only with reason `owner_departed_unassigned`")]
    reason: OwnerReason
    affinities: Annotated[dict[str, float], _doc("the affinities (SPEC §3) that decided it, by employee_id")]
    trigger_event_id: Annotated[str, _doc("the input event that caused the decision")]
    occurred_at: Annotated[datetime, _doc("RFC 3339; the triggering event's occurred_at")]
    relationship_id: Annotated[str, _doc("the customer's ledger aggregate (a UUID)")]
    version: Annotated[int, _doc("the decision's version in that ledger; increases per customer")]


class LedgerEventV1(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Any ledger decision (``Opened``, ``OwnerAssigned``, ``OwnerChanged``, ``Pinned`` …)."""

    schema_version: Literal[1] = 1
    ledger_event_id: str
    event_type: str
    customer_id: str
    relationship_id: str
    version: int
    occurred_at: datetime
    trigger_event_id: str | None = None
    previous_owner_id: str | None = None
    owner_id: str | None = None
    employee_id: str | None = None
    reason: str | None = None
    affinities: dict[str, float] | None = None


FollowUpEventType = Literal["FollowUpDue", "FollowUpDone", "FollowUpDropped"]


class FollowUpEventV1(msgspec.Struct, kw_only=True):
    """A follow-up (SPEC §8) fell due, or one that fell due was closed."""

    schema_version: Literal[1] = 1
    idempotency_key: Annotated[str, _doc("`<follow_up_id>:due`, `:done` or `:dropped`: deduplicate by it")]
    event_type: Annotated[
        FollowUpEventType,
        _doc(
            "`FollowUpDue` as soon as the worker's stream passes `due_at`; `FollowUpDone` when an owner "
            "touch closes it, `FollowUpDropped` when an owner change or a `customer_churned` does"
        ),
    ]
    follow_up_id: Annotated[str, _doc("UUID v5 of customer, kind and anchor event id")]
    customer_id: str
    owner_id: Annotated[str, _doc("the owner who is to follow up")]
    kind: Literal["check_in", "after_issue"]
    anchor_event_id: Annotated[str, _doc("the event it follows up on: an owner change or touch, or the touch that went badly")]
    journey_id: Annotated[str | None, _doc("the journey of an `after_issue`'s touch; null for a `check_in`")]
    due_at: Annotated[datetime, _doc("RFC 3339")]
    occurred_at: Annotated[
        datetime, _doc("RFC 3339; for a due, the event time that passed `due_at`; else when it was closed")
    ]
    closed_event_id: Annotated[str | None, _doc("the event that closed it; null for a due")]


class HandoffEventV1(msgspec.Struct, kw_only=True):
    """A handoff of SPEC §4 (within one journey, the customer passed to another person or department), with
    the customer's owner at its time."""

    schema_version: Literal[1] = 1
    idempotency_key: Annotated[str, _doc("`<from_event_id>><to_event_id>`: deduplicate by it")]
    event_type: Literal["Handoff"] = "Handoff"
    customer_id: str
    owner_id: Annotated[
        str | None, _doc("the customer's owner once the handoff's later touch is applied; null while it has none")
    ]
    journey_id: str
    from_event_id: str
    to_event_id: str
    from_department: str
    to_department: str
    from_employee_id: str | None
    to_employee_id: str | None
    kind: Annotated[
        Literal["transfer", "redirect", "bounce"],
        _doc("`transfer`: the earlier touch transferred; `redirect`: the customer had to reach out again; else `bounce`"),
    ]
    cross_department: Annotated[bool, _doc("departments differ: a silo handoff")]
    reexplained: Annotated[bool, _doc("the customer met a different person and no warm transfer carried the context")]
    ping_pong: Annotated[bool, _doc("a silo handoff back into a department the journey already saw")]
    gap_seconds: float
    occurred_at: Annotated[datetime, _doc("RFC 3339; the later touch's occurred_at")]


class OwnerChangedWebhookV1(msgspec.Struct, kw_only=True):
    """The body ``spoc notify`` POSTs: a CloudEvents 1.0 event (structured JSON mode) around an owner change.

    Headers per Standard Webhooks: ``webhook-id`` (= ``id`` = ``ledger_event_id``, the
    idempotency key), ``webhook-timestamp``, ``webhook-signature``.
    """

    specversion: Literal["1.0"]
    id: Annotated[str, _doc("the ledger_event_id: deduplicate by it")]
    source: Literal["/spoc-ledger/owner-changed"]
    type: Annotated[
        Literal["io.spoc-ledger.owner.assigned.v1", "io.spoc-ledger.owner.changed.v1"],
        _doc("assigned: a customer's first owner; changed: every later change"),
    ]
    subject: Annotated[str, _doc("the customer_id")]
    time: Annotated[datetime, _doc("RFC 3339; when the triggering event occurred")]
    datacontenttype: Literal["application/json"]
    data: OwnerChangedV1


class FollowUpWebhookV1(msgspec.Struct, kw_only=True):
    """The body ``spoc notify --topic spoc.follow-ups`` POSTs: a CloudEvents 1.0 event around a follow-up notice.

    Headers per Standard Webhooks: ``webhook-id`` (= ``id`` = ``idempotency_key``).
    """

    specversion: Literal["1.0"]
    id: Annotated[str, _doc("the idempotency_key: deduplicate by it")]
    source: Literal["/spoc-ledger/follow-ups"]
    type: Annotated[
        Literal[
            "io.spoc-ledger.follow-up.due.v1", "io.spoc-ledger.follow-up.done.v1", "io.spoc-ledger.follow-up.dropped.v1",
        ],
        _doc("due: the owner is to follow up now; done: the owner touched the customer; dropped: the owner changed "
             "or the customer churned"),
    ]
    subject: Annotated[str, _doc("the customer_id")]
    time: Annotated[datetime, _doc("RFC 3339; the notice's occurred_at")]
    datacontenttype: Literal["application/json"]
    data: FollowUpEventV1


class HandoffWebhookV1(msgspec.Struct, kw_only=True):
    """The body ``spoc notify --topic spoc.handoffs`` POSTs: a CloudEvents 1.0 event around a handoff.

    Headers per Standard Webhooks: ``webhook-id`` (= ``id`` = ``idempotency_key``).
    """

    specversion: Literal["1.0"]
    id: Annotated[str, _doc("the idempotency_key: deduplicate by it")]
    source: Literal["/spoc-ledger/handoffs"]
    type: Annotated[
        Literal["io.spoc-ledger.handoff.v1"], _doc("a customer was handed from one touch's person or department to another"),
    ]
    subject: Annotated[str, _doc("the customer_id")]
    time: Annotated[datetime, _doc("RFC 3339; the handoff's occurred_at")]
    datacontenttype: Literal["application/json"]
    data: HandoffEventV1
