"""The CloudEvents attributes of the public topics' messages (CloudEvents 1.0, its Kafka binding).

Every message the worker publishes on a public topic carries them as ``ce_*`` headers (binary
content mode: the JSON body is the message itself, unchanged), and ``spoc notify`` sends the same
``id``, ``source`` and ``type`` in its webhook bodies (structured mode), so a consumer sees one
event under one identity on Kafka and over HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class EventKind:
    """One topic's events: their ``source`` and the CloudEvents ``type`` of each ``event_type``."""

    source: str
    types: dict[str, str]

    def type_of(self, event_type: str) -> str:
        return self.types[event_type]


class RelationshipKind(EventKind):
    """Every ledger decision: its type named after the decision (``io.spoc-ledger.relationship.OwnerAssigned.v1``)."""

    def type_of(self, event_type: str) -> str:
        return f"io.spoc-ledger.relationship.{event_type}.v1"


OWNER_CHANGED_KIND = EventKind(
    "/spoc-ledger/owner-changed",
    {"OwnerAssigned": "io.spoc-ledger.owner.assigned.v1", "OwnerChanged": "io.spoc-ledger.owner.changed.v1"},
)
FOLLOW_UP_KIND = EventKind(
    "/spoc-ledger/follow-ups",
    {
        "FollowUpDue": "io.spoc-ledger.follow-up.due.v1",
        "FollowUpDone": "io.spoc-ledger.follow-up.done.v1",
        "FollowUpDropped": "io.spoc-ledger.follow-up.dropped.v1",
    },
)
HANDOFF_KIND = EventKind("/spoc-ledger/handoffs", {"Handoff": "io.spoc-ledger.handoff.v1"})
RELATIONSHIP_KIND = RelationshipKind("/spoc-ledger/relationship-events", {})


def kafka_headers(
    kind: EventKind, event_type: str, event_id: str, subject: str, time: datetime
) -> list[tuple[str, bytes]]:
    """The CloudEvents Kafka binding's headers (binary mode) for one message; ``subject`` is the customer."""
    return [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", event_id.encode()),
        ("ce_source", kind.source.encode()),
        ("ce_type", kind.type_of(event_type).encode()),
        ("ce_subject", subject.encode()),
        ("ce_time", time.isoformat().encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
