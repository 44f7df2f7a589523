"""IEEE XES event logs (the process-mining standard, XML) as SPOC touchpoints, read as a stream.

Each event of a trace is a touch: the trace's ``concept:name`` is the ``case_id``; ``--customer-attr``
(default ``customer``), ``--department-attr`` (default ``org:group``) and ``--employee-attr`` (default
``org:resource``) name the attributes that give ``customer_id``, ``department`` (as a slug) and
``employee_id``, looked up on the event first, then on its trace.  A trace with no customer is its own
customer (``case-<case id>``).  An event after which the case passes to another department or person is
``transferred``; a case's last event is ``resolved`` when its activity or lifecycle transition says so
(``resolve``, ``close``), else ``pending``; others are ``pending``.  The event's own attributes are kept in ``attributes``.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from xml.etree.ElementTree import Element, ParseError, iterparse

from ledger.errors import TerminalError
from spoc.importers.common import Imported, bounded, slug, touch_from, write_in_time_order

CLOSING_ACTIVITY = re.compile(r"resolv|clos", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Mapping:
    customer: str = "customer"
    department: str = "org:group"
    employee: str = "org:resource"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _value(element: Element) -> Any:
    """An attribute element's value in its XES type (nested attributes are not read)."""
    kind, text = _local(element.tag), element.get("value")
    if text is None:
        return None
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "boolean":
        return text.lower() == "true"
    return text


def _attributes(element: Element) -> dict[str, Any]:
    return {child.get("key", ""): _value(child) for child in element if _local(child.tag) not in ("event", "trace")}


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]  # a GzipFile reads as an IO[bytes]; typeshed does not say so
    return path.open("rb")


def _traces(path: Path) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each trace's attributes and its events' attributes, freeing each trace once read."""
    with _open(path) as source:
        try:
            for _, element in iterparse(source, events=("end",)):
                if _local(element.tag) == "trace":
                    events = [_attributes(e) for e in element if _local(e.tag) == "event"]
                    yield _attributes(element), events
                    element.clear()
        except (ParseError, OSError, EOFError) as error:
            raise TerminalError(f"{path} is not a readable XES log: {error}") from None


def _lookup(event: dict[str, Any], trace: dict[str, Any], key: str) -> str | None:
    """An attribute of the event, else of its trace, as text."""
    value = event.get(key, trace.get(key))
    return None if value is None else str(value)


def _when(text: Any, case: str) -> datetime:
    try:
        at = datetime.fromisoformat(str(text))
    except ValueError:
        raise TerminalError(f"case {case!r}: time:timestamp {text!r} is not an xs:dateTime") from None
    if at.tzinfo is None:
        raise TerminalError(f"case {case!r}: time:timestamp {text!r} has no offset; SPEC §1 needs one")
    return at


def import_xes(path: Path, out: str | Path | None, mapping: Mapping) -> Imported:
    events: list[dict[str, Any]] = []
    customers: set[str] = set()
    cases = without_customer = 0
    for trace, trace_events in _traces(path):
        cases += 1
        case = str(trace.get("concept:name", f"trace-{cases}"))[:128]
        if not trace_events:
            continue
        places = [
            (slug(_lookup(event, trace, mapping.department)), bounded(_lookup(event, trace, mapping.employee)))
            for event in trace_events
        ]
        last = trace_events[-1]
        last_activity = f"{last.get('concept:name', '')} {last.get('lifecycle:transition', '')}"
        for k, (event, (department, employee)) in enumerate(zip(trace_events, places, strict=True)):
            customer = bounded(_lookup(event, trace, mapping.customer))
            if customer is None:
                without_customer += 1
                customer = f"case-{case}"[:128]
            customers.add(customer)
            fields: dict[str, Any] = {"outcome": "pending"}
            if k + 1 < len(places):
                next_department, next_employee = places[k + 1]
                if (next_department, next_employee) != (department, employee):
                    fields["outcome"] = "transferred"
                    fields["transferred_to_department"] = next_department
                    if next_employee is not None:
                        fields["transferred_to_employee"] = next_employee
            elif CLOSING_ACTIVITY.search(last_activity):
                fields["outcome"] = "resolved"
            events.append(touch_from(
                f"{case}:{k}"[:128], _when(event.get("time:timestamp"), case), customer, department, employee, case,
                event, **fields,
            ))
    written = write_in_time_order(events, out)
    notes = (f"events without a {mapping.customer!r} attribute: {without_customer:,}; each of their cases is its own "
             "customer (case-ID); name another attribute with --customer-attr",) if without_customer else ()
    return Imported(written, cases, len(customers), notes)
