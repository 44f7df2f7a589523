"""Versioned input schema (SPEC §1): typed events, fast validation, JSON Schema files."""

from schemas.events import (
    BROADCAST_TYPES,
    CONTROL_TYPES,
    EVENT_TYPES,
    SCHEMA_VERSION,
    CustomerChurned,
    CustomerErased,
    EmployeeAway,
    EmployeeDeparted,
    EmployeeReturned,
    InputEvent,
    OwnerPinned,
    OwnerUnpinned,
    Touchpoint,
    event_type,
)
from schemas.validation import (
    MAX_MESSAGE_BYTES,
    REASONS,
    Rejection,
    content_digest,
    decode,
)

__all__ = [
    "BROADCAST_TYPES", "CONTROL_TYPES", "EVENT_TYPES", "MAX_MESSAGE_BYTES", "REASONS", "SCHEMA_VERSION",
    "CustomerChurned", "CustomerErased", "EmployeeAway", "EmployeeDeparted", "EmployeeReturned", "InputEvent",
    "OwnerPinned",
    "OwnerUnpinned", "Rejection", "Touchpoint", "content_digest", "decode", "event_type",
]
