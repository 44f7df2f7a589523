"""``spoc followups``: a team lead's list of what is due, from a replayed history, run as a user runs it."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.replaying import run_replay, write_jsonl

T0 = datetime(2024, 1, 1, 9, tzinfo=UTC)


def _touch(n: int, customer: str, employee: str | None, days: float, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"tp-{n}", "occurred_at": (T0 + timedelta(days=days)).isoformat(), "customer_id": customer,
        "channel": "phone", "direction": "inbound", "department": "billing", "employee_id": employee, **fields,
    }


def _spoc(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "spoc", *args], capture_output=True, text=True, check=True)
    return done.stdout


def test_the_list_shows_each_owners_due_follow_ups_oldest_first_with_why_and_how_late(tmp_path: Path) -> None:
    events = [
        _touch(1, "c1", "alice", 0, outcome="resolved"),  # alice owns c1: a check_in due day 60
        _touch(2, "c1", "bob", 1, outcome="abandoned", topic="refund"),  # someone else, badly: after_issue due day 3
        _touch(3, "c2", "carl", 2, outcome="resolved"),  # carl owns c2: a check_in due day 62 ...
        _touch(4, "c2", "carl", 10, outcome="resolved"),  # ... re-anchored at his own touch: due day 70, done never
        _touch(5, "c3", "dora", 100, outcome="resolved"),  # as_of: day 100
    ]
    db, _ = run_replay(tmp_path, [write_jsonl(tmp_path / "in.jsonl", events)])

    rows = list(csv.DictReader(io.StringIO(_spoc("followups", "--db", str(db), "--csv"))))
    assert [(r["owner_id"], r["customer_id"], r["kind"], r["anchor_event_id"]) for r in rows] == [
        ("alice", "c1", "after_issue", "tp-2"), ("alice", "c1", "check_in", "tp-1"), ("carl", "c2", "check_in", "tp-4"),
    ]
    assert [float(r["hours_late"]) for r in rows] == [97 * 24, 40 * 24, 30 * 24]
    assert rows[0]["anchor_touch"] == "billing · refund · abandoned" and rows[0]["journey_id"] == "tp-2"
    assert {r["status"] for r in rows} == {"open"}

    alice = list(csv.DictReader(io.StringIO(_spoc("followups", "--db", str(db), "--owner", "alice", "--csv"))))
    assert {r["owner_id"] for r in alice} == {"alice"} and len(alice) == 2
    earlier = list(csv.DictReader(io.StringIO(
        _spoc("followups", "--db", str(db), "--as-of", (T0 + timedelta(days=5)).isoformat(), "--csv")
    )))
    assert [(r["kind"], float(r["hours_late"])) for r in earlier] == [("after_issue", 2 * 24)]
    table = _spoc("followups", "--db", str(db), "--status", "done")
    assert "0 rows" in table
