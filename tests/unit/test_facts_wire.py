"""``spoc.facts`` (schemas/facts.py): every fact kind travels from the worker's encoder to the sink's
rows unchanged, and each struct names its table's columns, so the format changes only on purpose."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import orjson
import pytest

import projections
from ledger.intake import Batch, Intake
from ledger.keys import CustomerKey, choose_keys
from ledger.policy import DEFAULT_POLICY
from ledger.records import Position
from processors.kafka.marks import FACTS_VERSION_HEADER
from processors.live.outputs import facts_messages, facts_of
from processors.live.sealing import sealed_facts, split_facts
from processors.project import FactRows, decode_facts, sealed_key_ids
from projections.duckdb_store import (
    ERASED,
    control_row,
    follow_up_row,
    handoff_row,
    ledger_row,
    rejected_row,
    repeat_row,
    touch_row,
)
from schemas.facts import FACTS_VERSION, ROW_STRUCTS, InputFactsV1

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
DERIVED_BY_THE_SINK = {"rejected_events": ["raw_text"]}


def _line(n: int, **fields: Any) -> bytes:
    event = {
        "event_id": f"e{n}", "occurred_at": (T0 + timedelta(hours=n)).isoformat(), "customer_id": "c1",
        "channel": "phone", "direction": "inbound", "department": "billing", "employee_id": "alice",
        "outcome": "resolved", "topic": "invoice", **fields,
    }
    return msgspec.json.encode({k: v for k, v in event.items() if v is not None})  # orjson stops at 64-bit integers


# One input message each: a first touch (owner assigned), a transfer to another department, the
# receiving leg (a handoff), an inbound repeat of the topic, a pin (a control event and a decision),
# a malformed line, an erasure.
MESSAGES = [
    _line(0, attributes={"big": 2**70, "nested": {"a": [1, 2.5, None]}}, csat=5, sentiment=-0.5, revenue=12.25),
    _line(1, outcome="transferred", transferred_to_department="support"),
    _line(2, department="support", employee_id="bob", case_id=None),
    _line(30, employee_id=None, channel="portal", kind="inquiry"),
    orjson.dumps({"type": "owner_pinned", "event_id": "p1", "occurred_at": (T0 + timedelta(days=3)).isoformat(),
                  "customer_id": "c1", "employee_id": "bob"}),
    b'{"event_id": "bad", "customer_id": "c1", "channel": "pigeon"',
    orjson.dumps({"type": "customer_erased", "event_id": "x1", "occurred_at": (T0 + timedelta(days=4)).isoformat(),
                  "customer_id": "c1"}),
]


def _batches() -> list[Batch]:
    intake = Intake(DEFAULT_POLICY)
    batches = []
    for offset, raw in enumerate(MESSAGES):
        intake.take(raw, Position("spoc.touchpoints:0", offset, offset))
        batches.append(intake.drain())
    return batches


def _replay_rows(batches: list[Batch]) -> dict[str, list[tuple[Any, ...]]]:
    """The rows `spoc replay` appends for the same batches."""
    touches = [t for b in batches for t in b.touches]
    return {
        "touchpoints": [touch_row(t) for t in touches],
        "handoff_facts": [handoff_row(t) for t in touches if t.handoff is not None],
        "repeat_facts": [repeat_row(t) for t in touches if t.repeat is not None],
        "control_events": [control_row(c) for b in batches for c in b.controls],
        "ledger_events": [ledger_row(r) for b in batches for r in b.records],
        "rejected_events": [rejected_row(r) for b in batches for r in b.rejected],
        "follow_up_facts": [follow_up_row(f) for b in batches for f in b.follow_ups],
    }


def _sealed_messages(batches: list[Batch]) -> tuple[list[bytes], dict[str, CustomerKey]]:
    """The facts messages a worker publishes for the batches (one stretch), and the keys it stored."""
    facts: list[tuple[int, InputFactsV1]] = []
    for offset, batch in enumerate(batches):
        message_facts = facts_of(batch)
        if message_facts is not None:
            facts.append((offset, message_facts))
    split = split_facts(facts)
    needs = [(customer, offset) for offset, _, parts in split for customer in parts]
    choice = choose_keys("spoc.touchpoints:0", needs, [], [], None)
    messages = facts_messages(sealed_facts(split, lambda customer, offset: choice.keys[customer, offset]), b"{}", "store-1")
    assert all(dict(m.headers)[FACTS_VERSION_HEADER] == FACTS_VERSION for m in messages)
    return [m.value for m in messages], {key.key_id: key for key in choice.new}


def _sink_rows(values: list[bytes], keys: dict[str, bytes]) -> FactRows:
    rows = FactRows()
    for value in values:
        rows.add(decode_facts(value), keys)
    return rows


def test_every_fact_kind_reaches_the_sink_as_the_row_replay_writes() -> None:
    batches = _batches()
    values, stored = _sealed_messages(batches)
    rows = _sink_rows(values, {key_id: key.key for key_id, key in stored.items()})

    expected = _replay_rows(batches)
    assert all(expected[table] for table in ROW_STRUCTS), "the messages must produce every kind of fact"
    assert {table: [tuple(r) for r in got] for table, got in rows.tables.items()} == expected
    assert [(e.customer_id, e.source, e.seq) for e in rows.erasures] == [("c1", "spoc.touchpoints:0", 6)]
    assert rows.latest == T0 + timedelta(days=4)
    assert rows.messages == len(MESSAGES)
    assert rows.shredded == 0


def test_a_customers_facts_are_sealed_and_unreadable_once_the_key_is_gone() -> None:
    batches = _batches()
    values, stored = _sealed_messages(batches)
    assert [key.customer_id for key in stored.values()] == ["c1"]
    messages = [facts for value in values for facts in decode_facts(value)]
    assert sealed_key_ids(messages) == set(stored)
    # Outside the sealed parts: only the erasure names the customer; no touch, decision or line does.
    outside = [msgspec.structs.replace(facts, sealed=[]) for facts in messages]
    assert [f.erasure.customer_id for f in outside if f.erasure is not None] == ["c1"]
    assert not any(b"c1" in msgspec.json.encode(f) for f in outside if f.erasure is None)
    assert not any(b"alice" in value or b"invoice" in value for value in values)

    rows = _sink_rows(values, {})  # the key erased: what the sink can still write
    assert rows.shredded == len([f for f in messages if f.sealed])
    for table in ("touchpoints", "handoff_facts", "repeat_facts", "ledger_events", "control_events", "follow_up_facts"):
        assert rows.tables[table] == [], table  # the rows the erasure deletes (its own control event too)
    assert [e.customer_id for e in rows.erasures] == ["c1"]  # the erasure itself still reaches the file
    # The bad lines keep their reason and position, blanked as the erasure blanks them in replay's file.
    assert [row[:5] for row in rows.tables["rejected_events"]] == [
        ("missing_field", "required field `employee_id` is missing", "employee_id", ERASED.encode(), ERASED),
        ("invalid_json", "not valid JSON: Input data was truncated", None, ERASED.encode(), ERASED),
    ]


def test_a_message_of_the_first_workers_without_the_version_header_still_reads() -> None:
    # Before the struct existed, facts were the same JSON: bare rows, raw bytes in base64, erasures without a source.
    legacy = orjson.dumps([{
        "at": "2024-03-01T10:00:00+01:00",
        "control": ["x1", "customer_erased", "2024-03-01T10:00:00+01:00", "c1", None, "f", 3, 3],
        "rejected": ["invalid_json", "cut short", None, "eyJh", "f", 4, 4],
        "erasure": {"customer_id": "c1", "seq": 3},
    }])
    rows = FactRows()
    rows.add(decode_facts(legacy), {})
    assert rows.tables["rejected_events"] == [("invalid_json", "cut short", None, b'{"a', '{"a', "f", 4, 4)]
    assert rows.erasures[0].source == ""
    assert rows.latest == datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("table", sorted(ROW_STRUCTS))
def test_each_row_struct_names_its_tables_columns_in_order(table: str) -> None:
    # A column added to tables.sql fails here until the facts format gets a new version for it.
    with duckdb.connect() as con:
        con.execute((Path(projections.__file__).parent / "tables.sql").read_text())
        columns = [name for name, *_ in con.execute(f"DESCRIBE {table}").fetchall()]
    shipped = [c for c in columns if c not in DERIVED_BY_THE_SINK.get(table, [])]
    assert list(ROW_STRUCTS[table].__struct_fields__) == shipped


def test_a_facts_message_of_another_version_is_refused_naming_the_fix() -> None:
    from ledger.errors import TerminalError
    from processors.project import _refuse_another_facts_version

    with pytest.raises(TerminalError, match=r"version 99 of the facts format.*same version as `spoc worker`"):
        _refuse_another_facts_version(b"99")
    for readable in (b"1", b"2", FACTS_VERSION):  # what earlier workers left on the topic still reads
        _refuse_another_facts_version(readable)
