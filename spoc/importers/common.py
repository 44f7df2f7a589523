"""What every importer shares: department slugs, RFC 3339 times and writing the events in time order."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from simulator.write import open_jsonl_output

_NOT_SLUG = re.compile(r"[^a-z0-9]+")
NO_DEPARTMENT = "unassigned"
"""The department of a source event that names none (SPEC §1 requires one)."""


def slug(text: str | None) -> str:
    """A SPEC §1 department slug: ``"Group 56"`` → ``group-56``, ``"V5 3rd"`` → ``v5-3rd`` (at most 128 characters;
    nothing left → ``unassigned``)."""
    if text is None:
        return NO_DEPARTMENT
    return _NOT_SLUG.sub("-", text.lower()).strip("-")[:128].strip("-") or NO_DEPARTMENT


def bounded(text: str | None) -> str | None:
    """An id of at most 128 characters (SPEC §1), or None for an empty one."""
    return text[:128] if text else None


@dataclass(frozen=True, slots=True)
class Imported:
    events: int
    cases: int
    customers: int
    notes: tuple[str, ...] = ()
    """What the reader should know about how the source was mapped (printed on standard error)."""


def write_in_time_order(events: Iterable[dict[str, Any]], out: str | Path | None) -> int:
    """The events sorted by ``occurred_at`` (a datetime; ties keep the source's order), one JSON object a line."""
    ordered = sorted(events, key=lambda event: event["occurred_at"])
    with open_jsonl_output(out) as sink:
        for event in ordered:
            sink.write(orjson.dumps(event) + b"\n")
    return len(ordered)


def touch_from(
    event_id: str, at: datetime, customer_id: str, department: str, employee_id: str | None, case_id: str,
    attributes: dict[str, Any], **fields: Any,
) -> dict[str, Any]:
    """A SPEC §1 touchpoint (inbound, channel ``other`` unless ``fields`` say otherwise)."""
    return {
        "event_id": event_id, "occurred_at": at, "customer_id": customer_id, "channel": "other",
        "direction": "inbound", "department": department, "employee_id": employee_id, "case_id": case_id,
        **fields, "attributes": attributes,
    }
