"""`spoc replay` end to end: JSONL files in, a real DuckDB file and SQLite ledger out."""

from __future__ import annotations

import gzip
import hashlib
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from tests.replaying import rows, run_replay, snapshot, write_jsonl
from tests.scenario import day


def tp(event_id: str, at: Any, customer: str, employee: str | None, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id, "occurred_at": at, "customer_id": customer, "channel": "phone",
        "direction": "inbound", "department": fields.pop("department", "support"), "employee_id": employee,
        **fields,
    }


STORY = [
    # c1: alice resolves, then a transfer from billing to accounting and back (ping-pong).
    tp("e1", day(0), "c1", "alice", outcome="resolved", topic="billing.refund"),
    tp("e2", day(2), "c1", "bob", department="billing", outcome="transferred", topic="invoice"),
    tp("e3", day(2, 1), "c1", "carl", department="accounting", outcome="redirected", topic="invoice"),
    tp("e4", day(2, 5), "c1", "bea", department="billing", outcome="resolved", topic="invoice", csat=5),
    # c2: first contact resolution on a case, then silence (churns by inactivity).
    tp("e5", day(1), "c2", "dora", outcome="resolved", case_id="T-9", revenue=12.5, attributes={"vip": True}),
    # c3: resolved on first contact, but calls back within a week (no FCR), then churns explicitly.
    tp("e6", day(5), "c3", "alice", outcome="resolved", topic="device.setup"),
    tp("e7", day(8), "c3", "erin", outcome="resolved", topic="device.setup"),
    {"type": "customer_churned", "event_id": "e8", "occurred_at": day(9), "customer_id": "c3"},
    {"type": "employee_departed", "event_id": "e9", "occurred_at": day(10), "employee_id": "alice"},
    tp("e10", day(200), "c1", "bea", outcome="resolved", department="billing"),
]


@pytest.fixture
def story(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "story.jsonl", STORY)


def test_replay_builds_every_analyst_table(tmp_path: Path, story: Path) -> None:
    db, summary = run_replay(tmp_path, [story])
    assert (summary.accepted, summary.duplicates, sum(summary.rejected.values())) == (10, 0, 0)
    assert summary.customers == 3
    assert summary.handoffs == 2

    history = rows(db, "SELECT customer_id, owner_id, reason, event_id, valid_to IS NULL FROM owner_history ORDER BY customer_id, valid_from")
    assert history == [
        ("c1", "alice", "first_productive_contact", "e1", False),
        ("c1", "bea", "owner_departed", "e9", True),  # bea has the highest affinity left
        ("c2", "dora", "first_productive_contact", "e5", True),
        ("c3", "alice", "first_productive_contact", "e6", False),
        ("c3", "erin", "owner_departed", "e9", True),
    ]
    assert rows(db, "SELECT customer_id, owner_id, reason FROM customer_owner ORDER BY 1") == [
        ("c1", "bea", "owner_departed"), ("c2", "dora", "first_productive_contact"), ("c3", "erin", "owner_departed"),
    ]

    journeys = rows(db, "SELECT journey_key, first_event_id, last_event_id, touches, handoffs, resolved, fcr FROM journeys ORDER BY first_event_id")
    assert journeys == [
        ("topic:billing.refund", "e1", "e1", 1, 0, True, True),
        ("topic:general", "e10", "e10", 1, 0, True, True),
        ("topic:invoice", "e2", "e4", 3, 2, True, False),
        ("case:T-9", "e5", "e5", 1, 0, True, True),
        ("topic:device.setup", "e6", "e6", 1, 0, True, False),  # e7 repeats it within a week
        ("topic:device.setup", "e7", "e7", 1, 0, True, True),
    ]

    handoffs = rows(db, "SELECT from_event_id, to_event_id, kind, cross_department, reexplained, ping_pong, gap_seconds FROM handoffs ORDER BY 1")
    assert handoffs == [("e2", "e3", "transfer", True, True, False, 3600.0), ("e3", "e4", "redirect", True, True, True, 14400.0)]

    # e3 is the receiving leg of a transfer; e4 follows a redirect, so it repeats e3.
    assert rows(db, "SELECT event_id, previous_event_id, journey_key, gap_seconds FROM repeat_contacts ORDER BY 1") == [
        ("e4", "e3", "topic:invoice", 14400.0), ("e7", "e6", "topic:device.setup", 3 * 86400.0),
    ]

    metrics = rows(db, "SELECT customer_id, touches, employees_seen, owner_continuity, handoffs, silo_handoffs, repeat_contacts, churned, churned_at FROM customer_metrics ORDER BY 1")
    assert metrics == [
        # c1: after alice owns, e2 (bob), e3 (carl), e4 (bea) are not hers; e10 is bea's own.
        ("c1", 5, 4, 0.25, 2, 2, 1, False, None),
        # c2: last touch day 1, as_of is day 200: more than 180 days of silence.
        ("c2", 1, 1, None, 0, 0, 0, True, day(1)),
        ("c3", 2, 2, 0.0, 0, 0, 1, True, day(9)),
    ]
    assert rows(db, "SELECT bucket, customers, churned, churn_rate FROM churn_by_continuity") == [
        ("0-25", 1, 1, 1.0), ("25-50", 1, 0, 0.0), ("50-75", 0, 0, None), ("75-100", 0, 0, None), ("none", 1, 1, 1.0),
    ]
    assert rows(db, "SELECT bucket, customers, churned FROM churn_by_handoffs") == [
        ("0", 2, 2), ("1", 0, 0), ("2-3", 1, 0), ("4+", 0, 0),
    ]
    assert rows(db, "SELECT from_department, to_department, handoffs, reexplained_rate, repeat_contact_rate FROM silo_paths ORDER BY 1") == [
        ("accounting", "billing", 1, 1.0, 1.0), ("billing", "accounting", 1, 1.0, 0.0),
    ]
    assert rows(db, "SELECT owner_id, customers, touches FROM owner_load ORDER BY 1") == [
        ("bea", 1, 2), ("dora", 1, 1), ("erin", 1, 1),
    ]
    touch = rows(db, "SELECT occurred_at, revenue, attributes, journey_key, source, position FROM touchpoints WHERE event_id = 'e5'")
    assert touch == [(day(1), 12.5, '{"vip":true}', "case:T-9", str(story.resolve()), 5)]


def test_as_of_moves_the_inactivity_churn(tmp_path: Path, story: Path) -> None:
    db, _ = run_replay(tmp_path, [story], as_of=day(100))
    assert rows(db, "SELECT customer_id FROM customer_metrics WHERE churned ORDER BY 1") == [("c3",)]
    # c2's last touch is on day 1: silent for exactly 180 days on day 181 is not "more than 180 days".
    db, _ = run_replay(tmp_path, [story], as_of=day(181), name="exactly")
    assert rows(db, "SELECT customer_id, churned_at FROM customer_metrics WHERE churned ORDER BY 1") == [("c3", day(9))]
    db, _ = run_replay(tmp_path, [story], as_of=day(181) + timedelta(seconds=1), name="beyond")
    assert rows(db, "SELECT customer_id, churned_at FROM customer_metrics WHERE churned ORDER BY 1") == [
        ("c2", day(1)), ("c3", day(9)),
    ]


def test_replaying_twice_or_with_duplicated_lines_gives_identical_tables(tmp_path: Path, story: Path) -> None:
    first, _ = run_replay(tmp_path, [story], name="a")
    again, summary = run_replay(tmp_path, [story], name="a")
    assert summary.ledger_events_written == 0  # the ledger store has every position already
    doubled = write_jsonl(tmp_path / "doubled.jsonl", [e for e in STORY for _ in (1, 2)])
    dup_db, dup_summary = run_replay(tmp_path, [doubled], name="b")
    assert dup_summary.duplicates == len(STORY)
    assert snapshot(first) == snapshot(again) == snapshot(dup_db)


def test_bad_lines_go_to_rejected_events_with_file_and_line(tmp_path: Path) -> None:
    good = tp("g1", day(0), "c1", "alice", outcome="resolved")
    conflict = {**good, "csat": 1}
    path = write_jsonl(tmp_path / "dirty.jsonl", [good, b"{oops", b"[]", {**good, "event_id": "g2", "channel": "fax"}, conflict, good])
    db, summary = run_replay(tmp_path, [path])
    assert (summary.accepted, summary.duplicates) == (1, 1)
    assert dict(summary.rejected) == {"invalid_json": 1, "not_an_object": 1, "unknown_enum_value": 1, "event_id_conflict": 1}
    rejected = rows(db, "SELECT reason, field, raw_text, source, position FROM rejected_events ORDER BY position")
    assert [(r[0], r[1], r[4]) for r in rejected] == [
        ("invalid_json", None, 2), ("not_an_object", None, 3), ("unknown_enum_value", "channel", 4),
        ("event_id_conflict", "event_id", 5),
    ]
    assert rejected[0][2] == "{oops" and rejected[0][3] == str(path.resolve())
    assert rows(db, "SELECT count(*) FROM touchpoints") == [(1,)]


def test_ledger_store_holds_the_decisions_with_their_input_positions(tmp_path: Path, story: Path) -> None:
    run_replay(tmp_path, [story])
    ledger = sqlite3.connect(tmp_path / "out.ledger.sqlite")
    topics = [t for (t,) in ledger.execute("SELECT topic FROM stored_events ORDER BY rowid")]
    assert topics.count("ledger.relationship:Relationship.OwnerAssigned") == 3
    assert topics.count("ledger.relationship:Relationship.OwnerChanged") == 2
    assert topics.count("ledger.relationship:Relationship.Churned") == 1
    [(position,)] = ledger.execute(
        # The input's name and its content's hash: another content under the same name is another input.
        "SELECT max(notification_id) FROM tracking WHERE application_name = ?",
        (f"{story.resolve()}@{hashlib.sha256(story.read_bytes()).hexdigest()[:16]}",),
    ).fetchall()
    assert position == len(STORY)


def test_erasure_removes_the_customer_from_duckdb_and_the_ledger_store(tmp_path: Path, story: Path) -> None:
    erase = {"type": "customer_erased", "event_id": "x1", "occurred_at": day(300), "customer_id": "c2"}
    named_before = {**tp("bad-1", day(299), "c2", "alice"), "channel": "pigeon"}
    named_after = {**tp("bad-2", day(301), "c2", "alice"), "channel": "pigeon"}
    path = write_jsonl(tmp_path / "erase.jsonl", [*STORY, named_before, erase, named_after])
    db, _ = run_replay(tmp_path, [path])
    for table in ("touchpoints", "handoff_facts", "repeat_facts", "ledger_events", "control_events", "customer_metrics", "owner_history", "journeys"):
        assert rows(db, f"SELECT count(*) FROM {table} WHERE customer_id = 'c2'") == [(0,)], table
    # The bad line before the erasure keeps its reason and position, not its content; the one after is new input.
    blanked = rows(db, "SELECT reason, raw_text FROM rejected_events WHERE contains(detail, 'pigeon') ORDER BY seq")
    assert blanked == [("unknown_enum_value", "[erased]"), ("unknown_enum_value", orjson.dumps(named_after).decode())]
    ledger = sqlite3.connect(tmp_path / "out.ledger.sqlite")
    assert not any(b"c2" in state for (state,) in ledger.execute("SELECT state FROM stored_events"))
    assert any(b"c1" in state for (state,) in ledger.execute("SELECT state FROM stored_events"))


def _every_file(root: Path, pattern: str) -> dict[str, bytes]:
    """The content of every file matching ``pattern`` in ``root``; a folder that matches (the replay
    state beside the analytics file) as the content of all its files together, replay state decompressed."""
    found: dict[str, bytes] = {}
    for path in sorted(root.glob(pattern)):
        files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
        found[path.name] = b"".join(
            gzip.decompress(f.read_bytes()) if f.suffix == ".state" else f.read_bytes() for f in files
        )
    return found


@pytest.mark.parametrize("workers", [1, 2])
def test_an_erased_customer_leaves_no_byte_in_the_analytics_file_or_the_ledger_store(tmp_path: Path, workers: int) -> None:
    """The erasure comes in a later run than the customer's history, as it does in production: their
    ledger events are stored and the analytics file held them.  Found two bugs: the ledger store
    deleted nothing (wrong id format), and DuckDB and SQLite keep deleted rows' bytes in free space."""
    who = "erase-me-4f1d9c"
    history = [tp(f"z{i}", day(i), who, "alice", outcome="resolved", case_id=f"{who}-case-{i % 3}") for i in range(40)]
    # Bad input naming the customer: a wrong field, a line cut short right after the id, and the id
    # written with JSON escapes (which a byte search would not find).
    escaped = orjson.dumps({**tp("z-esc", day(41), who, "alice"), "channel": "pigeon"}).replace(b"erase-me", b"erase\\u002dme")
    bad: list[dict[str, Any] | bytes] = [
        {**tp("z-bad", day(41), who, "alice"), "channel": "pigeon"}, b'{"event_id":"z-cut","customer_id":"' + who.encode(), escaped,
    ]
    someone_else = {**tp("c1-bad", day(42), "c1", "alice"), "channel": "pigeon"}
    first = write_jsonl(tmp_path / "first.jsonl", [*STORY, *history, *bad, someone_else])
    erasure = write_jsonl(tmp_path / "erasure.jsonl", [
        {"type": "customer_erased", "event_id": "x1", "occurred_at": day(300), "customer_id": who},
    ])
    run_replay(tmp_path, [first], workers=workers)
    stores = _every_file(tmp_path, "out.*")
    assert all(who.encode() in content for content in stores.values()), "the search must find the customer first"
    db, summary = run_replay(tmp_path, [first, erasure], workers=workers)  # continues the history: only the erasure is new
    assert summary.customers_erased == 1 and summary.inputs_held == 1
    for name, content in _every_file(tmp_path, "out.*").items():
        assert who.encode() not in content, name
    kept = sum(1 for event in STORY if event.get("customer_id") == "c1" and "type" not in event)
    assert rows(db, "SELECT count(*) FROM touchpoints WHERE customer_id = 'c1'") == [(kept,)]
    assert rows(db, "SELECT count(*) FROM rejected_events WHERE raw_text = '[erased]'") == [(3,)]
    assert rows(db, "SELECT count(*) FROM rejected_events WHERE contains(raw_text, 'u002d')") == [(0,)]
    assert rows(db, "SELECT raw_text FROM rejected_events WHERE contains(raw_text, 'c1-bad')") == [(orjson.dumps(someone_else).decode(),)]
    ledger = sqlite3.connect(tmp_path / "out.ledger.sqlite")
    assert any(b"c1" in state for (state,) in ledger.execute("SELECT state FROM stored_events"))


def test_gzip_files_and_stdin_are_read_like_plain_files(tmp_path: Path, story: Path) -> None:
    packed = tmp_path / "story.jsonl.gz"
    packed.write_bytes(gzip.compress(story.read_bytes()))
    plain, _ = run_replay(tmp_path, [story], name="plain")
    gz, _ = run_replay(tmp_path, [packed], name="gz")
    db = tmp_path / "stdin.duckdb"
    result = subprocess.run(
        [sys.executable, "-m", "spoc", "replay", "-", "--db", str(db)],
        input=story.read_bytes(), capture_output=True, check=True,
    )
    assert b"accepted" in result.stdout
    assert snapshot(plain) == snapshot(gz) == snapshot(db)


def test_cli_summary_owner_lookup_and_errors(tmp_path: Path, story: Path) -> None:
    db = tmp_path / "cli.duckdb"
    spoc = [sys.executable, "-m", "spoc"]
    out = subprocess.run([*spoc, "replay", str(story), "--db", str(db)], capture_output=True, text=True, check=True).stdout
    for label in ("accepted", "duplicates", "rejected", "customers", "owner changes", "handoffs", "events/s"):
        assert label in out
    owner = subprocess.run([*spoc, "owner", "c1", "--db", str(db)], capture_output=True, text=True, check=True).stdout
    assert "bea" in owner and "owner_departed" in owner
    past = subprocess.run([*spoc, "owner", "c1", "--db", str(db), "--at", "2024-01-05T00:00:00Z"], capture_output=True, text=True, check=True).stdout
    assert "alice" in past and "first_productive_contact" in past
    none = subprocess.run([*spoc, "owner", "nobody", "--db", str(db)], capture_output=True, text=True)
    assert none.returncode == 1 and "nobody is not in" in none.stdout and "no accepted touchpoint names it" in none.stdout
    before = subprocess.run([*spoc, "owner", "c1", "--db", str(db), "--at", "2023-01-01T00:00:00Z"], capture_output=True, text=True)
    assert before.returncode == 1 and "had no owner at 2023-01-01T00:00:00+00:00: first seen 2024-" in before.stdout
    unowned_db = tmp_path / "unowned.duckdb"
    self_service = write_jsonl(tmp_path / "self-service.jsonl", [tp("s1", day(3), "c9", None, channel="portal", outcome="unresolved")])
    subprocess.run([*spoc, "replay", str(self_service), "--db", str(unowned_db)], capture_output=True, check=True)
    unowned = subprocess.run([*spoc, "owner", "c9", "--db", str(unowned_db)], capture_output=True, text=True)
    assert unowned.returncode == 1 and "c9 has no owner: seen since 2024-" in unowned.stdout and "(1 touches)" in unowned.stdout
    missing = subprocess.run([*spoc, "replay", str(tmp_path / "nope.jsonl"), "--db", str(db)], capture_output=True, text=True)
    assert missing.returncode == 2 and "input file not found" in missing.stderr and "Traceback" not in missing.stderr
    folder = subprocess.run([*spoc, "replay", str(tmp_path), "--db", str(db)], capture_output=True, text=True)
    assert folder.returncode == 2 and "is a directory" in folder.stderr
    bad_time = subprocess.run([*spoc, "replay", str(story), "--db", str(db), "--as-of", "soon"], capture_output=True, text=True)
    assert bad_time.returncode == 2 and "not a timestamp" in bad_time.stderr
    bad_ledger = subprocess.run([*spoc, "replay", str(story), "--db", str(db), "--ledger", "mysql://x"], capture_output=True, text=True)
    assert bad_ledger.returncode == 2 and "unsupported ledger URL" in bad_ledger.stderr
    usage = subprocess.run([*spoc, "replay"], capture_output=True, text=True)
    assert usage.returncode == 2


def test_replay_split_over_worker_processes_equals_a_single_process(tmp_path: Path) -> None:
    from benchmarks.workload import generate

    lines = list(generate(6000, 300, seed=3, dirty=0.01))
    erasures = [
        orjson.dumps({"type": "customer_erased", "event_id": f"erase-{n}", "occurred_at": "2024-06-01T00:00:00Z",
                      "customer_id": f"cust-{n:07d}"})
        for n in range(0, 300, 37)
    ]
    path = write_jsonl(tmp_path / "mixed.jsonl", lines[:3000] + erasures + lines[3000:])
    single, one = run_replay(tmp_path, [path], name="single", workers=1)
    split, two = run_replay(tmp_path, [path], name="split", workers=2)
    assert (one.accepted, one.duplicates, one.rejected, one.customers, one.owner_changes, one.handoffs) == (
        two.accepted, two.duplicates, two.rejected, two.customers, two.owner_changes, two.handoffs)
    assert one.duplicates > 0 and sum(one.rejected.values()) > 0
    assert snapshot(single) == snapshot(split)
    assert one.ledger_events_written == two.ledger_events_written > 0
    assert not list(tmp_path.glob("*.part*")), "partition files are cleaned up"


def test_a_file_from_a_windows_tool_is_read_whole(tmp_path: Path) -> None:
    """A UTF-8 byte order mark before the first line and CRLF line endings are not part of any event."""
    events = [orjson.dumps(tp(f"w{n}", day(n), "c1", "alice", outcome="resolved")) for n in range(3)]
    path = tmp_path / "exported.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(events) + b"\r\n")
    db, summary = run_replay(tmp_path, [path])
    assert summary.accepted == 3 and not summary.rejected
    assert rows(db, "SELECT event_id FROM touchpoints ORDER BY event_id") == [("w0",), ("w1",), ("w2",)]


def test_a_db_that_cannot_be_written_fails_with_what_to_do(tmp_path: Path, story: Path) -> None:
    spoc = [sys.executable, "-m", "spoc", "replay", str(story), "--db"]
    nested = tmp_path / "new" / "dir" / "a.duckdb"
    subprocess.run([*spoc, str(nested)], capture_output=True, check=True)
    assert nested.exists() and nested.with_name("a.duckdb.ledger.sqlite").exists()

    not_duckdb = tmp_path / "notes.duckdb"
    not_duckdb.write_text("not a database")
    result = subprocess.run([*spoc, str(not_duckdb)], capture_output=True, text=True)
    assert result.returncode == 2 and "is not a DuckDB file" in result.stderr and "Traceback" not in result.stderr

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    result = subprocess.run([*spoc, str(blocked / "x.duckdb")], capture_output=True, text=True)
    assert result.returncode == 2 and "give a --db in a directory you can write" in result.stderr
    assert "Traceback" not in result.stderr

    held = tmp_path / "held.duckdb"
    holder = duckdb.connect(str(held))
    try:
        result = subprocess.run([*spoc, str(held)], capture_output=True, text=True)
    finally:
        holder.close()
    assert result.returncode == 2 and "open for writing in another process" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_damaged_gzip_input_fails_with_one_clear_line(tmp_path: Path, story: Path, workers: str) -> None:
    damaged = tmp_path / "damaged.jsonl.gz"
    damaged.write_bytes(gzip.compress(story.read_bytes() * 50)[:-40])
    result = subprocess.run(
        [sys.executable, "-m", "spoc", "replay", str(damaged), "--db", str(tmp_path / "d.duckdb"), "--workers", workers],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "cannot read" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.part*"))


def test_a_journeys_first_and_last_touch_count_as_they_are_even_without_an_outcome(tmp_path: Path) -> None:
    """FCR needs the *first* touch resolved, and `resolved` reads the *last* touch: one with no outcome
    is not skipped over to a neighbour that has one."""
    events = [
        # Case K-1: an unanswered first touch, then the resolution: resolved, but not on first contact.
        tp("k1", day(0), "c1", "alice", case_id="K-1"),
        tp("k2", day(1), "c1", "alice", case_id="K-1", outcome="resolved", direction="outbound"),
        # Case K-2: resolved at once, then a follow-up with no outcome: first contact resolved it, the
        # journey's last touch did not.
        tp("m1", day(0), "c2", "bob", case_id="K-2", outcome="resolved"),
        tp("m2", day(30), "c2", "bob", case_id="K-2", direction="outbound"),
    ]
    db, _ = run_replay(tmp_path, [write_jsonl(tmp_path / "in.jsonl", events)])
    assert rows(db, "SELECT journey_id, last_event_id, touches, resolved, fcr FROM journeys ORDER BY 1") == [
        ("k1", "k2", 2, True, False),
        ("m1", "m2", 2, False, True),
    ]
