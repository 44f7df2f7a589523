"""Hostile input against the validator and the intake step every driver shares (replay, worker):
random bytes, deep nesting, huge strings, wrong types, unicode edge cases, timestamps far in the
past and future, reused ids.  Every message ends accepted, a duplicate, or rejected with a
SPEC §1 reason; nothing raises."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.intake import Batch, Intake
from ledger.keys import new_key
from ledger.policy import DEFAULT_POLICY
from ledger.records import Position
from processors.live.outputs import facts_of
from processors.live.sealing import sealed_facts, split_facts
from schemas import Rejection, decode
from schemas.validation import MAX_MESSAGE_BYTES, REASONS
from tests.hostile_values import (
    FIELDS,
    JSON,
    VALID,
    nested_objects,
    with_raw_attributes,
)


def written(batch: Batch) -> None:
    """What was accepted can be written: the sink's rows, sealed as the worker seals them."""
    facts = facts_of(batch)
    if facts is not None:
        sealed_facts(split_facts([(0, facts)]), lambda customer, offset: new_key(customer, "fuzz", offset))


def outcome(raw: bytes) -> str:
    result = decode(raw)
    if isinstance(result, Rejection):
        assert result.reason in REASONS and result.detail
        return result.reason
    return "accepted"


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_are_rejected_with_a_reason_never_raised(raw: bytes) -> None:
    outcome(raw)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_any_json_value_is_accepted_or_rejected_with_a_reason(value: Any) -> None:
    outcome(orjson.dumps(value))


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.tuples(st.sampled_from(FIELDS), JSON), max_size=4), st.integers(0, 3), st.integers(0, 5))
def test_a_touchpoint_with_hostile_fields_goes_through_the_intake_without_raising(
    changes: list[tuple[str, Any]], customer: int, copies: int
) -> None:
    intake = Intake(DEFAULT_POLICY)
    document = {**VALID, "customer_id": f"c-{customer}"}
    for name, value in changes:
        document[name] = value
    messages = [orjson.dumps(VALID), orjson.dumps(document)] * (1 + copies % 2)
    for offset, raw in enumerate(messages):
        intake.take(raw, Position("fuzz", offset, offset))
    written(intake.drain())
    counts = intake.counts
    assert counts.accepted + counts.duplicates + sum(counts.rejected.values()) == len(messages)
    assert set(counts.rejected) <= set(REASONS)


def test_deep_nesting_is_rejected_not_a_crash() -> None:
    for depth in (100, 1_000, 100_000):
        assert outcome(b"[" * depth + b"]" * depth) in REASONS
        nested = b'{"a":' * depth + b"1" + b"}" * depth
        assert outcome(nested) in REASONS
        deep_unknown_field = b',"x":' + b"[" * depth + b"]" * depth + b"}"
        for document in (VALID, {"type": "customer_churned", "event_id": "x", "occurred_at": VALID["occurred_at"]}):
            assert outcome(orjson.dumps(document)[:-1] + deep_unknown_field) in {*REASONS, "accepted"}


def test_deep_attributes_are_rejected_or_written_never_a_crash() -> None:
    """``attributes`` are carried through, so they are written back: orjson writes at most 254 levels."""
    for depth in (64, 65, 300, 900):
        intake = Intake(DEFAULT_POLICY)
        intake.take(with_raw_attributes(nested_objects(depth), event_id=f"d{depth}"), Position("fuzz", 0, 0))
        written(intake.drain())
        assert (intake.counts.accepted, dict(intake.counts.rejected)) == ((1, {}) if depth <= 64 else (0, {"invalid_value": 1}))


def test_huge_messages_and_strings_are_refused_before_parsing() -> None:
    assert outcome(orjson.dumps({**VALID, "topic": "x" * MAX_MESSAGE_BYTES})) == "too_large"
    assert outcome(b" " * (MAX_MESSAGE_BYTES + 1)) == "too_large"


def test_timestamps_far_in_the_past_and_future_do_not_break_the_core() -> None:
    intake = Intake(DEFAULT_POLICY)
    stamps = ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00", "2024-03-01T10:00:00+00:00",
              "1970-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"]
    for offset, stamp in enumerate(stamps):
        raw = orjson.dumps({**VALID, "event_id": f"t{offset}", "occurred_at": stamp, "employee_id": f"e-{offset % 2}"})
        intake.take(raw, Position("fuzz", offset, offset))
    intake.drain()
    assert intake.counts.accepted + sum(intake.counts.rejected.values()) == len(stamps)


def test_attributes_keep_integers_beyond_64_bits() -> None:
    """JSON numbers have no size limit; the attributes are carried through as they came."""
    intake = Intake(DEFAULT_POLICY)
    big = b"-123456789012345678901234567890"
    intake.take(with_raw_attributes(b'{"big":' + big + b"}"), Position("fuzz", 0, 0))
    facts = facts_of(intake.drain())
    assert intake.counts.accepted == 1 and facts is not None and facts.touch is not None
    assert facts.touch.attributes == '{"big":' + big.decode() + "}"
