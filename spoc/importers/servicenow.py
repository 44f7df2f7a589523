"""ServiceNow incident audit exports (one CSV row per update of an incident) as SPOC touchpoints.

The mapping (docs/real-data.md): each row is a touch of the incident's caller (``customer_id``) by the
row's ``assigned_to`` (``employee_id``; null when unassigned) in its ``assignment_group`` (``department``,
as a slug), with the incident ``number`` as ``case_id`` and its ``category`` as ``topic``, at
``sys_updated_at``.  A row after which the incident passes to another group or person is ``transferred``
(there, with its ``transferred_to_*``); one whose state is Resolved or Closed is ``resolved``; any other
``pending``.  Every column of the row is kept in ``attributes`` (``?``, ServiceNow's "no value", as null).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from ledger.errors import TerminalError
from spoc.importers.common import Imported, bounded, slug, touch_from, write_in_time_order

MISSING = "?"
CHANNELS = {"phone": "phone", "ivr": "phone", "email": "email", "self service": "portal", "direct opening": "visit"}
"""``contact_type`` → SPEC §1 channel (anything else: ``other``)."""
CLOSED_STATES = {"Resolved", "Closed"}
REQUIRED = ("number", "caller_id", "sys_mod_count", "sys_updated_at", "assignment_group", "assigned_to", "incident_state")


def _rows(path: Path) -> Iterator[dict[str, str]]:
    """The CSV's rows, from the file or from the one ``.csv`` inside a ``.zip``."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith(".csv")]
            if len(names) != 1:
                raise TerminalError(f"{path} holds {len(names)} CSV files; give the one export to import")
            with archive.open(names[0]) as raw:
                yield from csv.DictReader(io.TextIOWrapper(raw, "utf-8", newline=""))
    else:
        with path.open(newline="", encoding="utf-8") as text:
            yield from csv.DictReader(text)


def _value(text: str) -> str | None:
    return None if text == MISSING or text == "" else text


def _when(text: str, zone: tzinfo, number: str) -> datetime:
    """``D/M/YYYY HH:MM`` (the export's format, without an offset) in ``zone``."""
    try:
        return datetime.strptime(text, "%d/%m/%Y %H:%M").replace(tzinfo=zone)
    except ValueError:
        raise TerminalError(
            f"incident {number!r}: sys_updated_at {text!r} is not D/M/YYYY HH:MM (the audit export's format)"
        ) from None


def import_servicenow(path: Path, out: str | Path | None, zone: tzinfo) -> Imported:
    incidents: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in _rows(path):
        missing = [c for c in REQUIRED if c not in row]
        if missing:
            raise TerminalError(f"{path} is not a ServiceNow incident audit export: no column {', '.join(missing)}")
        incidents[row["number"]].append(row)
    events: list[dict[str, Any]] = []
    callers: set[str] = set()
    no_caller = 0
    for number, updates in incidents.items():
        updates.sort(key=lambda r: int(r["sys_mod_count"]) if r["sys_mod_count"].isdigit() else -1)
        for k, row in enumerate(updates):
            caller = bounded(_value(row["caller_id"]))
            if caller is None:
                no_caller += 1
                caller = f"incident-{number}"[:128]
            callers.add(caller)
            department, employee = slug(_value(row["assignment_group"])), bounded(_value(row["assigned_to"]))
            fields: dict[str, Any] = {
                "channel": CHANNELS.get(row.get("contact_type", "").lower(), "other"),
                "outcome": "resolved" if row["incident_state"] in CLOSED_STATES else "pending",
            }
            topic = _value(row.get("category", ""))
            if topic is not None:
                fields["topic"] = slug(topic)
            after = updates[k + 1] if k + 1 < len(updates) else None
            if after is not None:
                next_department = slug(_value(after["assignment_group"]))
                next_employee = bounded(_value(after["assigned_to"]))
                if (next_department, next_employee) != (department, employee):
                    fields["outcome"] = "transferred"
                    fields["transferred_to_department"] = next_department
                    if next_employee is not None:
                        fields["transferred_to_employee"] = next_employee
            attributes = {key: _value(value) for key, value in row.items() if key is not None and value is not None}
            events.append(touch_from(
                f"{number}:{row['sys_mod_count']}:{k}"[:128], _when(row["sys_updated_at"], zone, number), caller, department,
                employee, number, attributes, **fields,
            ))
    written = write_in_time_order(events, out)
    notes = (f"rows that name no caller: {no_caller:,}; each of their incidents is its own customer "
             "(incident-NUMBER)",) if no_caller else ()
    return Imported(written, len(incidents), len(callers), notes)
