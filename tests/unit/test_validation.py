"""SPEC §1: what is accepted, what is rejected and why, and duplicate vs conflict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from ledger.dedup import DedupIndex, Verdict
from schemas import (
    CustomerChurned,
    CustomerErased,
    EmployeeAway,
    EmployeeDeparted,
    EmployeeReturned,
    OwnerPinned,
    OwnerUnpinned,
    Rejection,
    Touchpoint,
    content_digest,
    decode,
)
from schemas.jsonschema import SCHEMA_FILES, render
from schemas.validation import MAX_ATTRIBUTES_DEPTH

VALID: dict[str, Any] = {
    "event_id": "evt-1",
    "occurred_at": "2024-03-01T10:00:00+01:00",
    "customer_id": "c-1",
    "channel": "phone",
    "direction": "inbound",
    "department": "billing",
    "employee_id": "e-7",
}


def _with(**changes: Any) -> bytes:
    document = {**VALID, **changes}
    return orjson.dumps({k: v for k, v in document.items() if v is not ...})


def _deep_attributes(levels: int) -> bytes:
    """A touchpoint whose ``attributes`` nest ``levels`` objects and arrays deep (``{"a": [[...]]}``)."""
    inner = b"[" * (levels - 1) + b"]" * (levels - 1)
    return _with(attributes={}).replace(b'"attributes":{}', b'"attributes":{"a":' + inner + b"}")


def _with_raw(field: str, value: bytes, **changes: Any) -> bytes:
    """A touchpoint whose ``field`` holds ``value`` as written, e.g. a number orjson would not write."""
    return _with(**{field: 0}, **changes).replace(f'"{field}":0'.encode(), f'"{field}":'.encode() + value)


BEYOND_DOUBLE = b"1e400"
BIG_INTEGER = b"1" + b"0" * 40


def test_attributes_nested_up_to_the_limit_are_carried_through_and_written_back() -> None:
    event = decode(_deep_attributes(MAX_ATTRIBUTES_DEPTH))
    assert isinstance(event, Touchpoint) and event.attributes is not None
    assert orjson.loads(orjson.dumps(event.attributes)) == event.attributes


def test_a_minimal_touchpoint_is_accepted_with_defaults() -> None:
    event = decode(_with())
    assert isinstance(event, Touchpoint)
    assert (event.type, event.schema_version, event.topic) == ("touchpoint", 1, None)
    assert event.occurred_at.utcoffset().total_seconds() == 3600  # type: ignore[union-attr]


def test_every_optional_field_is_typed() -> None:
    event = decode(_with(
        case_id="T-1", topic="billing.refund", kind="complaint", outcome="transferred",
        transferred_to_department="accounting", transferred_to_employee="e-9", csat=2,
        sentiment=-0.4, revenue=0, attributes={"vip": True}, type="touchpoint", schema_version=1,
    ))
    assert isinstance(event, Touchpoint)
    assert (event.csat, event.sentiment, event.revenue, event.attributes) == (2, -0.4, 0.0, {"vip": True})


def test_unknown_fields_are_ignored_and_null_employee_means_self_service() -> None:
    event = decode(_with(employee_id=None, shoe_size=44))
    assert isinstance(event, Touchpoint) and event.employee_id is None


@pytest.mark.parametrize(
    ("document", "cls"),
    [
        ({"type": "customer_churned", "event_id": "x", "occurred_at": "2024-01-01T00:00:00Z", "customer_id": "c"}, CustomerChurned),
        ({"type": "employee_departed", "event_id": "x", "occurred_at": "2024-01-01T00:00:00Z", "employee_id": "e"}, EmployeeDeparted),
        ({"type": "owner_pinned", "event_id": "x", "occurred_at": "2024-01-01T00:00:00Z", "customer_id": "c", "employee_id": "e"}, OwnerPinned),
        ({"type": "owner_unpinned", "event_id": "x", "occurred_at": "2024-01-01T00:00:00Z", "customer_id": "c"}, OwnerUnpinned),
        ({"type": "customer_erased", "event_id": "x", "occurred_at": "2024-01-01T00:00:00Z", "customer_id": "c"}, CustomerErased),
        ({"type": "employee_away", "event_id": "x", "occurred_at": "2024-01-01T00:00:00Z", "employee_id": "e"}, EmployeeAway),
        ({"type": "employee_away", "event_id": "x", "occurred_at": "2024-01-01T00:00:00Z", "employee_id": "e",
          "until": "2024-01-15T00:00:00+01:00"}, EmployeeAway),
        ({"type": "employee_returned", "event_id": "x", "occurred_at": "2024-01-01T00:00:00Z", "employee_id": "e"}, EmployeeReturned),
    ],
)
def test_control_events_are_accepted(document: dict[str, Any], cls: type) -> None:
    assert isinstance(decode(orjson.dumps(document)), cls)


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"[1, 2]", "expected a JSON object, got an array"),
        (b"null", "expected a JSON object, got null"),
        (b"12.5", "expected a JSON object, got a number"),
        (_with(type=None), "unknown event type null;"),
        (_with(type="telepathy"), 'unknown event type "telepathy";'),
        (_with(type=[1]), "unknown event type (an array);"),
        (_with_raw("type", BIG_INTEGER), f"unknown event type {BIG_INTEGER.decode()};"),  # exactly, not as a double
        # Deeper than orjson writes back (254 levels): echoing it raised.
        (_with(type=...).replace(b"{", b'{"type":' + b"[" * 300 + b"]" * 300 + b",", 1), "unknown event type (an array);"),
    ],
)
def test_rejections_describe_the_input_in_json_terms(raw: bytes, detail: str) -> None:
    rejection = decode(raw)
    assert isinstance(rejection, Rejection) and rejection.detail.startswith(detail)


@pytest.mark.parametrize(
    ("raw", "reason", "field"),
    [
        (b"{not json", "invalid_json", None),
        (b"", "invalid_json", None),
        (b"\xff\xfe", "invalid_json", None),
        # Found by the atheris fuzzer: invalid UTF-8 inside the `type` value raised UnicodeDecodeError.
        (b'{"type":"cust\xc8mer_erased","event_id":"y","occurred_at":"2012-03-06T00:00:00Z","customer_id":"c1"}', "invalid_json", None),
        (_with(channel="phone").replace(b"phone", b"ph\xedone"), "invalid_json", None),
        (b"[1, 2]", "not_an_object", None),
        (b'"a string"', "not_an_object", None),
        (_with(event_id=...), "missing_field", "event_id"),
        (_with(customer_id=...), "missing_field", "customer_id"),
        (_with(employee_id=...), "missing_field", "employee_id"),
        (_with(channel=...), "missing_field", "channel"),
        (_with(event_id=""), "invalid_value", "event_id"),
        (_with(event_id="x" * 129), "invalid_value", "event_id"),
        (_with(customer_id=12), "wrong_type", "customer_id"),
        (_with(csat="5"), "wrong_type", "csat"),
        (_with(csat=True), "wrong_type", "csat"),
        (_with(csat=6), "invalid_value", "csat"),
        (_with(sentiment=1.5), "invalid_value", "sentiment"),
        (_with(revenue=-1), "invalid_value", "revenue"),
        (_with(department="Billing"), "invalid_value", "department"),
        (_with(attributes=[1]), "wrong_type", "attributes"),
        (_deep_attributes(MAX_ATTRIBUTES_DEPTH + 1), "invalid_value", "attributes"),
        (_with_raw("revenue", BEYOND_DOUBLE), "invalid_value", "revenue"),
        (_with_raw("attributes", b'{"n":' + BEYOND_DOUBLE + b"}"), "invalid_value", "attributes[...]"),
        # A number beyond a double's range anywhere in the message used to hide its fault as invalid_json.
        (_with_raw("shoe_size", BEYOND_DOUBLE, customer_id=...), "missing_field", "customer_id"),
        (_with_raw("shoe_size", BIG_INTEGER, channel="fax"), "unknown_enum_value", "channel"),
        (_with_raw("type", BEYOND_DOUBLE), "unknown_type", "type"),
        (_with_raw("type", BIG_INTEGER), "unknown_type", "type"),
        (BEYOND_DOUBLE, "not_an_object", None),
        (b"[1, " + BEYOND_DOUBLE + b"]", "not_an_object", None),
        (b"[1, oops]", "invalid_json", None),
        (_deep_attributes(300), "invalid_value", "attributes"),  # past orjson's 254 levels: writing it back raised
        (_with(channel="fax"), "unknown_enum_value", "channel"),
        (_with(direction="sideways"), "unknown_enum_value", "direction"),
        (_with(outcome="solved"), "unknown_enum_value", "outcome"),
        (_with(kind="gossip"), "unknown_enum_value", "kind"),
        (_with(type="telepathy"), "unknown_type", "type"),
        (_with(occurred_at="2024-03-01T10:00:00"), "naive_timestamp", "occurred_at"),
        (_with(occurred_at="yesterday"), "invalid_timestamp", "occurred_at"),
        (_with(schema_version=2), "unknown_schema_version", "schema_version"),
        # SPEC §1 bounds: an instant must have a UTC year in 0001-9999; ids and departments 1-128 characters.
        (_with(occurred_at="9999-12-31T23:59:59-12:00"), "invalid_timestamp", "occurred_at"),
        (_with(occurred_at="0001-01-01T00:30:00+01:00"), "invalid_timestamp", "occurred_at"),
        (orjson.dumps({"type": "customer_erased", "event_id": "x", "occurred_at": "9999-12-31T23:00:00-02:00", "customer_id": "c"}), "invalid_timestamp", "occurred_at"),
        (_with(employee_id=""), "invalid_value", "employee_id"),
        (_with(employee_id="e" * 129), "invalid_value", "employee_id"),
        (_with(department="d" * 129), "invalid_value", "department"),
        (orjson.dumps({"type": "owner_pinned", "event_id": "x", "occurred_at": "2024-01-01T00:00:00Z", "customer_id": "c"}), "missing_field", "employee_id"),
        (orjson.dumps({"type": "customer_churned", "event_id": "x", "occurred_at": "2024-01-01T00:00:00Z"}), "missing_field", "customer_id"),
        (orjson.dumps({"type": "employee_departed", "event_id": "x", "occurred_at": "2024-01-01T00:00:00Z", "employee_id": None}), "wrong_type", "employee_id"),
        (orjson.dumps({"type": "customer_erased", "event_id": "x", "occurred_at": "2024-01-01T00:00:00", "customer_id": "c"}), "naive_timestamp", "occurred_at"),
        # SPEC §9 availability: broadcasts about an employee, `until` an instant with an offset.
        (orjson.dumps({"type": "employee_away", "event_id": "x", "occurred_at": "2024-01-01T00:00:00Z"}), "missing_field", "employee_id"),
        (orjson.dumps({"type": "employee_away", "event_id": "x", "occurred_at": "2024-01-01T00:00:00Z", "employee_id": "e",
                       "until": "2024-01-15T00:00:00"}), "naive_timestamp", "until"),
        (orjson.dumps({"type": "employee_away", "event_id": "x", "occurred_at": "2024-01-01T00:00:00Z", "employee_id": "e",
                       "until": "9999-12-31T23:00:00-02:00"}), "invalid_timestamp", "until"),
        (orjson.dumps({"type": "employee_returned", "event_id": "x", "occurred_at": "2024-01-01T00:00:00Z", "employee_id": ""}), "invalid_value", "employee_id"),
    ],
)
def test_bad_input_is_rejected_with_a_reason_naming_the_field(raw: bytes, reason: str, field: str | None) -> None:
    rejection = decode(raw)
    assert isinstance(rejection, Rejection)
    assert (rejection.reason, rejection.field) == (reason, field)
    assert rejection.detail
    if field:
        assert field in rejection.detail


def test_a_message_over_one_mebibyte_is_rejected_before_parsing() -> None:
    rejection = decode(_with(attributes={"blob": "x" * (1024 * 1024)}))
    assert isinstance(rejection, Rejection) and rejection.reason == "too_large"


def test_same_event_id_same_content_is_a_duplicate_different_content_a_conflict() -> None:
    index = DedupIndex()
    original = decode(_with())
    reordered = decode(b'{"employee_id":"e-7","department":"billing","direction":"inbound","channel":"phone",'
                       b'"customer_id":"c-1","occurred_at":"2024-03-01T10:00:00+01:00","event_id":"evt-1", "x": 1}')
    changed = decode(_with(csat=1))
    assert isinstance(original, Touchpoint) and isinstance(reordered, Touchpoint) and isinstance(changed, Touchpoint)
    assert index.check(original.event_id, content_digest(original)) is Verdict.NEW
    assert index.check(reordered.event_id, content_digest(reordered)) is Verdict.DUPLICATE
    assert index.check(changed.event_id, content_digest(changed)) is Verdict.CONFLICT
    assert len(index) == 1


@pytest.mark.parametrize("path", sorted(SCHEMA_FILES), ids=lambda p: p.name)
def test_the_published_json_schemas_are_generated_from_the_code(path: Path) -> None:
    # Regenerate with `python -m schemas` after changing schemas/.
    assert path.read_bytes() == render(SCHEMA_FILES[path]())


@pytest.mark.parametrize("path", sorted(SCHEMA_FILES), ids=lambda p: p.name)
def test_the_published_schemas_do_not_depend_on_how_docstrings_render(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # msgspec 0.23 began dedenting docstrings into descriptions; the contract must not follow it.
    import schemas.events
    import schemas.ledger_messages

    published = render(SCHEMA_FILES[path]())
    for module in (schemas.events, schemas.ledger_messages):
        for struct in vars(module).values():
            if isinstance(struct, type) and issubclass(struct, msgspec.Struct) and struct.__module__ == module.__name__:
                monkeypatch.setattr(struct, "__doc__", "A docstring\n\n    rendered another way.")
    assert render(SCHEMA_FILES[path]()) == published


def test_the_dedup_index_agrees_with_a_plain_dict_across_folds_and_filter_collisions(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    import ledger.dedup

    # A tiny recent set and bitmap force folding into the sorted arrays and "maybe seen" hits,
    # and tiny fold blocks merge each fold in many blocks.
    monkeypatch.setattr(ledger.dedup, "RECENT_LIMIT", 16)
    monkeypatch.setattr(ledger.dedup, "FOLD_BLOCK", 5)
    monkeypatch.setattr(ledger.dedup, "FILTER_BITS", 64)
    index, expected = DedupIndex(), {}
    rng = random.Random(7)
    for _n in range(3000):
        event_id = f"e{rng.randrange(1200)}"
        digest = rng.choice((1, 1, 1, 2))
        verdict = index.check(event_id, digest)
        if event_id not in expected:
            expected[event_id] = digest
            assert verdict is Verdict.NEW
        else:
            assert verdict is (Verdict.DUPLICATE if expected[event_id] == digest else Verdict.CONFLICT)
    assert len(index) == len(expected)
