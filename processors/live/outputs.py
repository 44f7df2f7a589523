"""The messages the live worker publishes for its input messages.

Each is marked with the input position it came from (:mod:`processors.kafka.marks`).
The sink's facts travel in chunks (one message per run of input messages, marked with
the last one): per-message sends would cost more than the rest of the work.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ledger.followups import DONE, DROPPED, OPEN, Announcement
from ledger.intake import Batch, RejectedInput
from ledger.records import TouchFact
from ledger.relationship import OWNER_EVENTS, describe
from processors.kafka.marks import (
    FACTS_VERSION_HEADER,
    INDEX_HEADER,
    KEY_STORE_HEADER,
    OFFSET_HEADER,
    POLICY_HEADER,
    Outgoing,
)
from processors.kafka.topics import (
    FACTS,
    FOLLOW_UPS,
    HANDOFFS,
    OWNER_CHANGED,
    RELATIONSHIP_EVENTS,
    TOUCHPOINTS_DLQ,
)
from projections.duckdb_store import (
    control_row,
    follow_up_row,
    handoff_row,
    ledger_row,
    repeat_row,
    touch_row,
)
from schemas.cloudevents import FOLLOW_UP_KIND, HANDOFF_KIND, OWNER_CHANGED_KIND, RELATIONSHIP_KIND, kafka_headers
from schemas.facts import (
    FACTS_VERSION,
    ControlFactV1,
    ErasureFactV1,
    FollowUpFactV1,
    HandoffFactV1,
    InputFactsV1,
    LedgerFactV1,
    RejectedFactV1,
    RepeatFactV1,
    TouchFactV1,
)
from schemas.ledger_messages import (
    FollowUpEventType,
    FollowUpEventV1,
    HandoffEventV1,
    LedgerEventV1,
    OwnerChangedV1,
)

_encode = msgspec.json.Encoder().encode
_NO_FACTS = InputFactsV1()
FACTS_CHUNK_BYTES = 512 * 1024
"""A facts message closes past this size (a single input message's facts may exceed it)."""


def ledger_event_message(customer_id: str, event: Any) -> LedgerEventV1:
    payload = describe(event)
    payload.pop("customer_id", None)
    relationship_id = str(event.originator_id)
    return LedgerEventV1(
        ledger_event_id=f"{relationship_id}:{event.originator_version}",
        event_type=type(event).__name__,
        customer_id=customer_id,
        relationship_id=relationship_id,
        version=event.originator_version,
        occurred_at=event.timestamp,
        **payload,
    )


def owner_changed_message(message: LedgerEventV1) -> OwnerChangedV1:
    assert message.reason is not None and message.trigger_event_id is not None
    return OwnerChangedV1(
        ledger_event_id=message.ledger_event_id,
        event_type=message.event_type,  # type: ignore[arg-type]  # an owner event: OwnerAssigned or OwnerChanged
        customer_id=message.customer_id,
        previous_owner_id=message.previous_owner_id,
        owner_id=message.owner_id,
        reason=message.reason,  # type: ignore[arg-type]  # an owner event's reason is an OwnerReason
        affinities=message.affinities or {},
        trigger_event_id=message.trigger_event_id,
        occurred_at=message.occurred_at,
        relationship_id=message.relationship_id,
        version=message.version,
    )


FOLLOW_UP_EVENTS: dict[str, tuple[FollowUpEventType, str]] = {
    OPEN: ("FollowUpDue", "due"), DONE: ("FollowUpDone", "done"), DROPPED: ("FollowUpDropped", "dropped"),
}


def follow_up_message(announcement: Announcement) -> FollowUpEventV1:
    follow_up = announcement.follow_up
    event_type, suffix = FOLLOW_UP_EVENTS[announcement.status]
    return FollowUpEventV1(
        idempotency_key=f"{follow_up.follow_up_id}:{suffix}",
        event_type=event_type,
        follow_up_id=follow_up.follow_up_id,
        customer_id=announcement.customer_id,
        owner_id=follow_up.owner_id,
        kind=follow_up.kind,  # type: ignore[arg-type]  # check_in or after_issue
        anchor_event_id=follow_up.anchor_event_id,
        journey_id=follow_up.journey_id,
        due_at=follow_up.due_at,
        occurred_at=announcement.at,
        closed_event_id=announcement.event_id,
    )


def handoff_message(fact: TouchFact) -> HandoffEventV1:
    """The ``spoc.handoffs`` message of a touch that ends a handoff."""
    handoff = fact.handoff
    assert handoff is not None
    return HandoffEventV1(
        idempotency_key=f"{handoff.from_event_id}>{handoff.to_event_id}",
        customer_id=fact.touch.customer_id,
        owner_id=fact.owner_after,
        journey_id=handoff.journey_id,
        from_event_id=handoff.from_event_id,
        to_event_id=handoff.to_event_id,
        from_department=handoff.from_department,
        to_department=handoff.to_department,
        from_employee_id=handoff.from_employee_id,
        to_employee_id=handoff.to_employee_id,
        kind=handoff.kind,  # type: ignore[arg-type]  # transfer, redirect or bounce
        cross_department=handoff.cross_department,
        reexplained=handoff.reexplained,
        ping_pong=handoff.ping_pong,
        gap_seconds=handoff.gap_seconds,
        occurred_at=fact.touch.occurred_at,
    )


def dead_letter_headers(rejected: RejectedInput, topic: str, partition: int) -> list[tuple[str, bytes]]:
    """Why and where from, next to the untouched raw bytes (the message value)."""
    rejection = rejected.rejection
    headers = [
        ("spoc-dlq-reason", rejection.reason.encode()),
        ("spoc-dlq-detail", rejection.detail.encode()),
        ("spoc-dlq-source-topic", topic.encode()),
        ("spoc-dlq-source-partition", str(partition).encode()),
        ("spoc-dlq-source-offset", str(rejected.position.offset).encode()),
    ]
    if rejection.field is not None:
        headers.append(("spoc-dlq-field", rejection.field.encode()))
    return headers


def facts_of(batch: Batch) -> InputFactsV1 | None:
    """The DuckDB sink's facts for one input message, or None when there are none.  Each row is the one
    ``spoc replay`` appends (``projections.duckdb_store``)."""
    facts = InputFactsV1()
    for touch in batch.touches:
        facts.at = touch.touch.occurred_at
        facts.touch = TouchFactV1(*touch_row(touch))
        if touch.handoff is not None:
            facts.handoff = HandoffFactV1(*handoff_row(touch))
        if touch.repeat is not None:
            facts.repeat = RepeatFactV1(*repeat_row(touch))
    for control in batch.controls:
        facts.at = control.event.occurred_at
        facts.control = ControlFactV1(*control_row(control))
    facts.ledger = [LedgerFactV1(*ledger_row(r)) for r in batch.records]
    facts.follow_ups = [FollowUpFactV1(*follow_up_row(f)) for f in batch.follow_ups]
    for rejected in batch.rejected:
        rejection, position = rejected.rejection, rejected.position
        # The raw bytes once; the sink derives the text column from them.
        facts.rejected = RejectedFactV1(
            rejection.reason, rejection.detail, rejection.field, rejected.raw,
            position.source, position.offset, position.seq,
        )
    for erasure in batch.erasures:
        facts.erasure = ErasureFactV1(erasure.customer_id, erasure.position.seq, erasure.position.source)
    return None if facts == _NO_FACTS else facts


def facts_messages(facts: list[tuple[int, bytes]], policy: bytes, key_store: str) -> list[Outgoing]:
    """Input messages' facts (offset, JSON object), in offset order, as JSON-array messages on ``FACTS``,
    each with the worker's ``policy`` (JSON) and the identity of the ledger store keeping their keys."""
    out: list[Outgoing] = []
    chunk: list[bytes] = []
    size = 0
    for i, (offset, value) in enumerate(facts):
        chunk.append(value)
        size += len(value)
        if size >= FACTS_CHUNK_BYTES or i == len(facts) - 1:
            position = str(offset).encode()
            headers = [
                (OFFSET_HEADER, position), (INDEX_HEADER, b"0"), (POLICY_HEADER, policy),
                (FACTS_VERSION_HEADER, FACTS_VERSION), (KEY_STORE_HEADER, key_store.encode()),
            ]
            out.append(Outgoing(FACTS, None, b"[" + b",".join(chunk) + b"]", headers, (offset, 0)))
            chunk, size = [], 0
    return out


def outputs_for(batch: Batch, offset: int, key: bytes | None, topic: str, partition: int) -> list[Outgoing]:
    """The ledger events, owner changes, handoffs, follow-up notices and dead letters one input message
    (at ``offset``) leads to."""
    out: list[Outgoing] = []
    position = str(offset).encode()

    def emit(target: str, key: bytes | None, value: bytes, index: int, extra: list[tuple[str, bytes]] | None = None) -> None:
        headers = [(OFFSET_HEADER, position), (INDEX_HEADER, str(index).encode()), *(extra or ())]
        out.append(Outgoing(target, key, value, headers, (offset, index)))

    owner_changes = 0
    for index, record in enumerate(batch.records):
        customer, customer_key = record.customer_id, record.customer_id.encode()
        message = ledger_event_message(customer, record.event)
        emit(RELATIONSHIP_EVENTS, customer_key, _encode(message), index, kafka_headers(
            RELATIONSHIP_KIND, message.event_type, message.ledger_event_id, customer, message.occurred_at))
        if isinstance(record.event, OWNER_EVENTS):
            emit(OWNER_CHANGED, customer_key, _encode(owner_changed_message(message)), owner_changes, kafka_headers(
                OWNER_CHANGED_KIND, message.event_type, message.ledger_event_id, customer, message.occurred_at))
            owner_changes += 1
    handoffs = (fact for fact in batch.touches if fact.handoff is not None)
    for index, fact in enumerate(handoffs):
        handoff = handoff_message(fact)
        emit(HANDOFFS, handoff.customer_id.encode(), _encode(handoff), index, kafka_headers(
            HANDOFF_KIND, handoff.event_type, handoff.idempotency_key, handoff.customer_id, handoff.occurred_at))
    for index, announcement in enumerate(batch.announcements):
        notice = follow_up_message(announcement)
        emit(FOLLOW_UPS, notice.customer_id.encode(), _encode(notice), index, kafka_headers(
            FOLLOW_UP_KIND, notice.event_type, notice.idempotency_key, notice.customer_id, notice.occurred_at))
    for index, rejected in enumerate(batch.rejected):
        emit(TOUCHPOINTS_DLQ, key, rejected.raw, index, dead_letter_headers(rejected, topic, partition))
    return out
