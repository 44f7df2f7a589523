"""Generate the published JSON Schema files from the msgspec structs.

The fields, types and bounds come from the structs; every struct's description is
written out here rather than taken from its docstring, because how msgspec renders a
docstring changes between its versions (0.23 dedents them), and the published contract
must change only when we change it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import orjson

from schemas.events import CONTROL_TYPES, Touchpoint
from schemas.ledger_messages import (
    FollowUpEventV1,
    FollowUpWebhookV1,
    HandoffEventV1,
    HandoffWebhookV1,
    LedgerEventV1,
    OwnerChangedV1,
    OwnerChangedWebhookV1,
)

HERE = Path(__file__).parent
INPUT_SCHEMA_FILE = HERE / "input-event.v1.schema.json"
OWNER_CHANGED_SCHEMA_FILE = HERE / "owner-changed.v1.schema.json"
LEDGER_EVENT_SCHEMA_FILE = HERE / "relationship-event.v1.schema.json"
WEBHOOK_SCHEMA_FILE = HERE / "owner-changed-webhook.v1.schema.json"
FOLLOW_UP_SCHEMA_FILE = HERE / "follow-up.v1.schema.json"
FOLLOW_UP_WEBHOOK_SCHEMA_FILE = HERE / "follow-up-webhook.v1.schema.json"
HANDOFF_SCHEMA_FILE = HERE / "handoff.v1.schema.json"
HANDOFF_WEBHOOK_SCHEMA_FILE = HERE / "handoff-webhook.v1.schema.json"


# The published description of each struct, by its name in ``$defs`` (None: none).
STRUCT_DESCRIPTIONS: dict[str, str | None] = {
    "Touchpoint": "A contact between the company and a customer (``type`` absent or ``touchpoint``).",
    "CustomerChurned": None,
    "EmployeeDeparted": "Broadcast: applies to every customer at its position in the input.",
    "OwnerPinned": None,
    "OwnerUnpinned": None,
    "CustomerErased": None,
    "EmployeeAway": (
        "Broadcast: the employee is away from its time until ``employee_returned`` or ``until`` (SPEC §9). "
        "Ownership stays; routing passes them by."
    ),
    "EmployeeReturned": "Broadcast: the employee is back (SPEC §9).",
    "OwnerChangedV1": "A customer got a new single point of contact (or, after a departure, none).",
    "FollowUpEventV1": "A follow-up (SPEC §8) fell due, or one that fell due was closed.",
    "FollowUpWebhookV1": (
        "The body ``spoc notify --topic spoc.follow-ups`` POSTs: a CloudEvents 1.0 event (structured JSON mode) "
        "around a follow-up notice. Headers per Standard Webhooks: ``webhook-id`` (= ``id`` = ``idempotency_key``), "
        "``webhook-timestamp``, ``webhook-signature``."
    ),
    "HandoffEventV1": (
        "A handoff of SPEC §4 (within one journey, the customer passed to another person or department), "
        "with the customer's owner at its time."
    ),
    "HandoffWebhookV1": (
        "The body ``spoc notify --topic spoc.handoffs`` POSTs: a CloudEvents 1.0 event (structured JSON mode) "
        "around a handoff. Headers per Standard Webhooks: ``webhook-id`` (= ``id`` = ``idempotency_key``), "
        "``webhook-timestamp``, ``webhook-signature``."
    ),
    "LedgerEventV1": "Any ledger decision (``Opened``, ``OwnerAssigned``, ``OwnerChanged``, ``Pinned`` …).",
    "OwnerChangedWebhookV1": (
        "The body ``spoc notify`` POSTs: a CloudEvents 1.0 event (structured JSON mode) around an owner "
        "change. Headers per Standard Webhooks: ``webhook-id`` (= ``id`` = ``ledger_event_id``, the "
        "idempotency key), ``webhook-timestamp``, ``webhook-signature``."
    ),
}


def with_explicit_descriptions(definitions: dict[str, Any]) -> dict[str, Any]:
    """``definitions`` with each struct's description from ``STRUCT_DESCRIPTIONS``, never its docstring."""
    for name, definition in definitions.items():
        if name not in STRUCT_DESCRIPTIONS:
            raise KeyError(f"struct {name} has no published description: add it to STRUCT_DESCRIPTIONS in {__name__}")
        definition.pop("description", None)
        if STRUCT_DESCRIPTIONS[name] is not None:
            definition["description"] = STRUCT_DESCRIPTIONS[name]
    return definitions


def input_event_schema() -> dict[str, Any]:
    structs = (Touchpoint, *CONTROL_TYPES.values())
    refs, definitions = msgspec.json.schema_components(structs, ref_template="#/$defs/{name}")
    schema: dict[str, Any] = {"oneOf": list(refs), "$defs": with_explicit_descriptions(definitions)}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "SPOC Ledger input event, schema_version 1"
    schema["description"] = (
        "One JSON object per Kafka message or JSONL line. `type` defaults to `touchpoint`; "
        "unknown top-level fields are ignored. See SPEC.md section 1."
    )
    return schema


def message_schema(struct: type, title: str, description: str) -> dict[str, Any]:
    schema: dict[str, Any] = msgspec.json.schema(struct)
    with_explicit_descriptions(schema["$defs"])
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = title
    schema["description"] = description
    return schema


def owner_changed_schema() -> dict[str, Any]:
    return message_schema(
        OwnerChangedV1,
        "SPOC Ledger owner-changed notification, schema_version 1 (topic spoc.owner-changed)",
        "One message per owner decision, keyed by customer_id, in decision order per customer. "
        "Re-deliveries carry the same ledger_event_id: deduplicate by it. Fields may be added, never renamed.",
    )


def ledger_event_schema() -> dict[str, Any]:
    return message_schema(
        LedgerEventV1,
        "SPOC Ledger relationship event, schema_version 1 (topic spoc.relationship-events)",
        "Every decision of a customer's relationship ledger, keyed by customer_id, in ledger order.",
    )


def follow_up_schema() -> dict[str, Any]:
    return message_schema(
        FollowUpEventV1,
        "SPOC Ledger follow-up notice, schema_version 1 (topic spoc.follow-ups)",
        "Keyed by customer_id, in order per customer: FollowUpDue as soon as the worker's stream passes a "
        "pending follow-up's due_at, then FollowUpDone or FollowUpDropped when it closes. Re-deliveries carry "
        "the same idempotency_key: deduplicate by it. Fields may be added, never renamed.",
    )


def webhook_schema() -> dict[str, Any]:
    return message_schema(
        OwnerChangedWebhookV1,
        "SPOC Ledger owner-changed webhook body, v1 (spoc notify)",
        "A CloudEvents 1.0 event in structured JSON mode (content type application/cloudevents+json) whose "
        "data is an owner-changed v1 message. Signed per Standard Webhooks: verify webhook-signature over "
        "webhook-id, webhook-timestamp and the raw body; deduplicate by webhook-id.",
    )


def follow_up_webhook_schema() -> dict[str, Any]:
    return message_schema(
        FollowUpWebhookV1,
        "SPOC Ledger follow-up webhook body, v1 (spoc notify --topic spoc.follow-ups)",
        "A CloudEvents 1.0 event in structured JSON mode whose data is a follow-up v1 message and whose type "
        "names it (due, done, dropped). Signed per Standard Webhooks; deduplicate by webhook-id.",
    )


def handoff_schema() -> dict[str, Any]:
    return message_schema(
        HandoffEventV1,
        "SPOC Ledger handoff, schema_version 1 (topic spoc.handoffs)",
        "One message per handoff of SPEC section 4 (the rows of the handoffs table), keyed by customer_id, in order "
        "per customer, with the customer's owner at its time. Re-deliveries carry the same idempotency_key: "
        "deduplicate by it. Fields may be added, never renamed.",
    )


def handoff_webhook_schema() -> dict[str, Any]:
    return message_schema(
        HandoffWebhookV1,
        "SPOC Ledger handoff webhook body, v1 (spoc notify --topic spoc.handoffs)",
        "A CloudEvents 1.0 event in structured JSON mode whose data is a handoff v1 message. Signed per "
        "Standard Webhooks; deduplicate by webhook-id.",
    )


SCHEMA_FILES = {
    INPUT_SCHEMA_FILE: input_event_schema,
    OWNER_CHANGED_SCHEMA_FILE: owner_changed_schema,
    LEDGER_EVENT_SCHEMA_FILE: ledger_event_schema,
    WEBHOOK_SCHEMA_FILE: webhook_schema,
    FOLLOW_UP_SCHEMA_FILE: follow_up_schema,
    FOLLOW_UP_WEBHOOK_SCHEMA_FILE: follow_up_webhook_schema,
    HANDOFF_SCHEMA_FILE: handoff_schema,
    HANDOFF_WEBHOOK_SCHEMA_FILE: handoff_webhook_schema,
}


def render(schema: dict[str, Any]) -> bytes:
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def write_all() -> list[Path]:
    for path, build in SCHEMA_FILES.items():
        path.write_bytes(render(build()))
    return list(SCHEMA_FILES)
