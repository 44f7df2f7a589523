"""Hostile values for input events: every JSON shape, edge-case text and timestamps, for the hostile-input tests."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import strategies as st

VALID: dict[str, Any] = {
    "event_id": "evt-1", "occurred_at": "2024-03-01T10:00:00+01:00", "customer_id": "c-1", "channel": "phone",
    "direction": "inbound", "department": "billing", "employee_id": "e-7",
}
FIELDS = (*VALID, "type", "kind", "outcome", "case_id", "topic", "csat", "sentiment", "revenue",
          "transferred_to_department", "schema_version", "employee_id")

EDGE_TEXT = st.sampled_from([
    "", "\x00", "\ud7ff", "\ufeff", "\u202e", "e\u0301", "😀" * 100, "a" * 70_000, "\\", "\"", "null",
    "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+00:00", "1970-01-01T00:00:00-23:59", "2024-02-30T00:00:00Z",
    "2024-03-01T10:00:00", "2024-03-01 10:00:00Z", "+275760-09-13T00:00:00Z", "-0001-01-01T00:00:00Z",
])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1), st.floats(allow_nan=False),
    st.text(max_size=50), EDGE_TEXT,
)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20)


def with_raw_attributes(attributes: bytes, **fields: Any) -> bytes:
    """A valid touchpoint carrying these ``attributes`` bytes as they are (orjson would not write some values)."""
    return orjson.dumps({**VALID, **fields})[:-1] + b',"attributes":' + attributes + b"}"


def nested_objects(depth: int) -> bytes:
    """``{"a":{"a":...1...}}``, ``depth`` objects deep."""
    return b'{"a":' * depth + b"1" + b"}" * depth
