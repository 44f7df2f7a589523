"""The sink's working DuckDB file on its own: what it remembers of the facts topic between runs."""

from __future__ import annotations

from pathlib import Path

import duckdb
import msgspec
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from ledger.errors import TerminalError
from ledger.policy import DEFAULT_POLICY, Policy
from processors.kafka.marks import INDEX_HEADER, OFFSET_HEADER, POLICY_HEADER
from processors.kafka.topics import FACTS
from processors.project import Sink, SinkSettings


def facts_message(
    partition: int, offset: int, input_offset: int, inputs: int, policy: Policy | None = None
) -> ConsumerRecord[bytes, bytes]:
    """A facts message as the worker publishes it, carrying ``inputs`` input messages without rows
    (and without the policy header, as workers before it, unless ``policy`` is given)."""
    value = b"[" + b",".join([b"{}"] * inputs) + b"]"
    headers = [(OFFSET_HEADER, str(input_offset).encode()), (INDEX_HEADER, b"0")]
    if policy is not None:
        headers.append((POLICY_HEADER, msgspec.json.encode(policy)))
    return ConsumerRecord(FACTS, partition, offset, 0, 0, None, value, None, -1, len(value), headers)


def test_a_working_file_of_an_earlier_sink_is_upgraded_and_skips_what_it_wrote(tmp_path: Path) -> None:
    db = tmp_path / "live.duckdb"
    with duckdb.connect(str(db.with_name(db.name + ".sink"))) as con:  # as sinks before 0.2 left it
        con.execute("CREATE TABLE sink_offsets (topic VARCHAR, partition INTEGER, next_offset BIGINT, "
                    "PRIMARY KEY (topic, partition))")
        con.execute("INSERT INTO sink_offsets VALUES (?, 0, 42)", [FACTS])

    sink = Sink(SinkSettings("127.0.0.1:9", db))
    try:
        assert sink.offsets() == {0: 42} and sink.written_up_to == {}
        p0, p1 = TopicPartition(FACTS, 0), TopicPartition(FACTS, 1)
        assert sink.write({p0: [facts_message(0, 42, 900, 3), facts_message(0, 43, 900, 3)],
                           p1: [facts_message(1, 0, 5, 2)]}) == 5
        assert sink.redelivered == 1
    finally:
        sink.close()

    reopened = Sink(SinkSettings("127.0.0.1:9", db))
    try:
        assert reopened.offsets() == {0: 44, 1: 1} and reopened.written_up_to == {0: 900, 1: 5}
        # A copy of an old message is skipped; the next input offset is written.
        assert reopened.write({p1: [facts_message(1, 1, 5, 2), facts_message(1, 2, 6, 1)]}) == 1
        assert reopened.redelivered == 1 and reopened.offsets() == {0: 44, 1: 3}
    finally:
        reopened.close()


def test_the_latest_event_is_the_latest_instant_whatever_the_offsets(tmp_path: Path) -> None:
    """``latest_event_at`` is the views' default ``as_of`` (SPEC §6): compared as instants, not as text."""
    db = tmp_path / "live.duckdb"
    sink = Sink(SinkSettings("127.0.0.1:9", db))
    try:
        later_in_new_york = b'[{"at": "2024-05-01T23:00:00-05:00"}]'  # 04:00 UTC on May 2
        earlier_in_utc = b'[{"at": "2024-05-02T01:00:00+00:00"}]'
        tp = TopicPartition(FACTS, 0)
        sink.write({tp: [ConsumerRecord(FACTS, 0, 0, 0, 0, None, later_in_new_york, None, -1, 0, [])]})
        sink.write({tp: [ConsumerRecord(FACTS, 0, 1, 0, 0, None, earlier_in_utc, None, -1, 0, [])]})
        row = sink.store.con.execute(
            "SELECT CAST(value AS TIMESTAMPTZ) = TIMESTAMPTZ '2024-05-02 04:00:00+00' FROM spoc_settings "
            "WHERE key = 'latest_event_at'"
        ).fetchone()
        assert row is not None and row[0]
    finally:
        sink.close()


def _recorded_window(sink: Sink) -> list[tuple[str]]:
    return sink.store.con.execute("SELECT value FROM spoc_settings WHERE key = 'repeat_window_days'").fetchall()


def test_the_sink_records_the_policy_the_facts_carry_and_refuses_another(tmp_path: Path) -> None:
    db, tp = tmp_path / "live.duckdb", TopicPartition(FACTS, 0)
    workers = Policy(repeat_window_days=2.0)
    sink = Sink(SinkSettings("127.0.0.1:9", db))
    try:
        assert sink.write({tp: [facts_message(0, 0, 10, 1)]}) == 1  # an older worker's: no policy known
        assert _recorded_window(sink) == []
        assert sink.write({tp: [facts_message(0, 1, 11, 1, workers)]}) == 1
        assert _recorded_window(sink) == [("2.0",)]
        with pytest.raises(TerminalError, match=r"another policy \(repeat_window_days 2\.0 → 7\.0\); the worker runs"):
            sink.write({tp: [facts_message(0, 2, 12, 1, DEFAULT_POLICY)]})
    finally:
        sink.close()

    reopened = Sink(SinkSettings("127.0.0.1:9", db))
    try:
        assert reopened.offsets() == {0: 2}  # the refused message was not written
        with pytest.raises(TerminalError, match="another policy"):
            reopened.write({tp: [facts_message(0, 2, 12, 1, DEFAULT_POLICY)]})
    finally:
        reopened.close()
    given = Sink(SinkSettings("127.0.0.1:9", db, workers))
    try:
        assert given.write({tp: [facts_message(0, 2, 12, 1, workers)]}) == 1
    finally:
        given.close()
