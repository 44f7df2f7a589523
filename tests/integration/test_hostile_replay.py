"""Hostile input through a whole replay: real DuckDB and SQLite files, every writer.

The unit tests check that the validator and the intake never raise; these check
that whatever they accept can also be written, which is where big numbers and
deep attributes used to stop a replay (and the worker on that message, for ever).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile_values import (
    FIELDS,
    JSON,
    VALID,
    nested_objects,
    with_raw_attributes,
)
from tests.replaying import rows, run_replay

# Written into the line as they are: orjson would not write some of them.
RAW_NUMBERS = (b"123456789012345678901234567890", b"-18446744073709551616", b"1e308", b"5e-324", b"-0")
NUMBER_FIELDS = ("attributes", "csat", "sentiment", "revenue", "schema_version", "employee_id")
TYPES = (None, "owner_pinned", "customer_churned", "customer_erased", "employee_departed")


def _line(event_id: str, changes: list[tuple[str, Any]], raw_changes: list[tuple[str, bytes]], event_type: str | None) -> bytes:
    document = {**VALID, "event_id": event_id}
    if event_type is not None:
        document["type"] = event_type
    document.update(changes)
    line = orjson.dumps(document)
    for name, number in raw_changes:
        value = b'{"n":' + number + b"}" if name == "attributes" else number  # carried through, so written back
        line = line[:-1] + b',"' + name.encode() + b'":' + value + b"}"
    return line


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(st.tuples(st.sampled_from((*FIELDS, "attributes")), JSON), max_size=4),
    st.lists(st.tuples(st.sampled_from(NUMBER_FIELDS), st.sampled_from(RAW_NUMBERS)), max_size=2),
    st.sampled_from(TYPES),
)
def test_every_hostile_line_is_written_or_rejected_and_the_replay_finishes(
    tmp_path_factory: Any, changes: list[tuple[str, Any]], raw_changes: list[tuple[str, bytes]], event_type: str | None
) -> None:
    tmp = tmp_path_factory.mktemp("hostile")
    lines = []
    for k in range(3):
        lines.append(_line(f"h{k}", changes, raw_changes, event_type))
        lines.append(orjson.dumps({**VALID, "event_id": f"v{k}", "occurred_at": f"2024-03-0{k + 1}T10:00:00Z"}))
    path = tmp / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    db, summary = run_replay(tmp, [path])
    assert summary.accepted + summary.duplicates + sum(summary.rejected.values()) == len(lines)
    (rejected,) = rows(db, "SELECT count(*) FROM rejected_events")[0]
    assert rejected == sum(summary.rejected.values())


def test_attributes_as_they_came_or_rejected_when_too_deep(tmp_path: Path) -> None:
    big = b'{"big":-123456789012345678901234567890,"text":"a\\u0000b"}'
    lines = [with_raw_attributes(big, event_id="big"), with_raw_attributes(nested_objects(300), event_id="deep")]
    path = tmp_path / "attributes.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    db, summary = run_replay(tmp_path, [path])
    assert summary.accepted == 1 and dict(summary.rejected) == {"invalid_value": 1}
    assert rows(db, "SELECT event_id, attributes FROM touchpoints") == [("big", big.decode())]
    assert rows(db, "SELECT field, position FROM rejected_events") == [("attributes", 2)]
