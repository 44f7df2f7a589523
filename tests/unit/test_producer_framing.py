"""Producers' framing: a customer's event keyed by anything but its customer_id is dead-lettered as wrong_key
(SPEC §2); the Confluent wire format is read from its JSON."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from ledger.intake import Intake
from ledger.policy import DEFAULT_POLICY
from ledger.records import Position
from schemas import Rejection, Touchpoint, decode

TOUCH = {
    "event_id": "e1", "occurred_at": "2024-01-01T09:00:00Z", "customer_id": "c1", "channel": "phone",
    "direction": "inbound", "department": "support", "employee_id": "alice", "outcome": "resolved",
}
DEPARTED = {"type": "employee_departed", "event_id": "d1", "occurred_at": "2024-01-02T00:00:00Z", "employee_id": "alice"}


def _take(event: Mapping[str, object], key: bytes | None, *, reporting: bool = True) -> Intake:
    intake = Intake(DEFAULT_POLICY)
    intake.take(orjson.dumps(event), Position("touchpoints:0", 0, 0), reporting=reporting, key=key)
    return intake


def test_a_touch_keyed_by_another_id_is_rejected_naming_the_key_and_the_fix() -> None:
    intake = _take(TOUCH, b"c2")
    [rejected] = intake.drain().rejected
    assert (rejected.rejection.reason, rejected.rejection.field) == ("wrong_key", "customer_id")
    assert "'c2' is not its customer_id 'c1'" in rejected.rejection.detail
    assert "key every message by its customer_id" in rejected.rejection.detail
    assert intake.counts.accepted == 0 and intake.counts.rejected == {"wrong_key": 1}
    assert not intake.core.customers  # it changed nobody's state


def test_its_customer_id_no_key_and_broadcasts_pass() -> None:
    for event, key in ((TOUCH, b"c1"), (TOUCH, None), (DEPARTED, b"any-key"), (DEPARTED, None)):
        intake = _take(event, key)
        assert intake.counts.accepted == 1 and not intake.drain().rejected, (event, key)


def test_a_long_hostile_key_is_shown_shortened_and_as_text() -> None:
    [rejected] = _take(TOUCH, b"\xff" + b"k" * 500).drain().rejected
    assert "\\xff" in rejected.rejection.detail and "…" in rejected.rejection.detail
    assert len(rejected.rejection.detail) < 300


def test_a_stream_that_does_not_report_rejects_silently() -> None:
    intake = _take(TOUCH, b"c2", reporting=False)
    assert not intake.drain().rejected and intake.counts.rejected == {}


def test_the_confluent_wire_format_is_read_from_its_json() -> None:
    """A Schema Registry serializer's framing (zero byte, 4-byte schema id) before the JSON."""
    framed = b"\x00" + (1234).to_bytes(4, "big") + orjson.dumps(TOUCH)
    plain = decode(orjson.dumps(TOUCH))
    assert decode(framed) == plain and isinstance(plain, Touchpoint)
    assert decode(framed[:5]) == Rejection(
        "invalid_json", "a Confluent wire-format header (zero byte, 4-byte schema id) with nothing after it"
    )
    bad = decode(b"\x00\x00\x00\x00\x01" + orjson.dumps({**TOUCH, "channel": "pigeon"}))
    assert isinstance(bad, Rejection) and (bad.reason, bad.field) == ("unknown_enum_value", "channel")
    # The same event framed and plain is one event: the second is a duplicate delivery.
    intake = Intake(DEFAULT_POLICY)
    intake.take(framed, Position("t:0", 0, 0), key=b"c1")
    intake.take(orjson.dumps(TOUCH), Position("t:0", 1, 1), key=b"c1")
    assert (intake.counts.accepted, intake.counts.duplicates) == (1, 1)
