"""``spoc route`` (SPEC §9) on a history worked out by hand, replayed into a real DuckDB file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from spoc.cli import main
from tests.replaying import run_replay, write_jsonl
from tests.scenario import T0

H = 180.0  # the half-life in days


def at(days: float) -> str:
    return (T0 + timedelta(days=days)).isoformat()


def touch(n: int, days: float, employee: str, department: str, outcome: str) -> dict[str, Any]:
    return {"event_id": f"t{n}", "occurred_at": at(days), "customer_id": "c1", "employee_id": employee,
            "department": department, "channel": "phone", "direction": "inbound", "outcome": outcome}


def broadcast(kind: str, days: float, employee: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": f"{kind}-{employee}-{days}", "occurred_at": at(days), "employee_id": employee, **fields}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("route")
    events = [
        touch(1, 0, "e1", "billing", "resolved"),  # e1 becomes the owner (weight 1)
        touch(2, 10, "e2", "support", "resolved"),  # weight 1
        touch(3, 11, "e2", "returns", "resolved"),  # weight 1: e2's latest department is returns
        touch(4, 12, "e3", "sales", "unresolved"),  # weight 0.2
        touch(5, 13, "e4", "sales", "transferred"),  # weight 0: no positive affinity, never a candidate
        broadcast("employee_away", 20, "e1", until=at(40)),
        broadcast("employee_departed", 60, "e3"),
        broadcast("employee_away", 80, "e1"),
        broadcast("employee_returned", 90, "e1"),
        broadcast("employee_away", 100, "e2"),
        broadcast("employee_away", 100, "e1"),
    ]
    built, _ = run_replay(tmp, [write_jsonl(tmp / "in.jsonl", events)])
    return built


def route(db: Path, capsys: pytest.CaptureFixture[str], days: float | None) -> dict[str, Any]:
    args = ["route", "c1", "--db", str(db), "--json"] + ([] if days is None else ["--at", at(days)])
    assert main(args) == 0
    answer: dict[str, Any] = orjson.loads(capsys.readouterr().out)
    return answer


def decay(days: float, *touched: float) -> float:
    return sum(2 ** (-(days - t) / H) for t in touched)


def test_an_away_owner_is_passed_by_for_the_ranked_others(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answer = route(db, capsys, 30)
    e2, e3 = decay(30, 10, 11), 0.2 * decay(30, 12)
    assert list(answer) == ["owner", "owner_available", "candidates", "route_to", "department"]
    assert (answer["owner"], answer["owner_available"], answer["route_to"]) == ("e1", False, "e2")
    assert answer["candidates"] == [
        {"employee_id": "e2", "affinity": pytest.approx(e2), "score": 100},
        {"employee_id": "e3", "affinity": pytest.approx(e3), "score": round(100 * e3 / e2)},
    ]
    assert answer["department"] == "returns"  # of the latest touch with e2


def test_the_owner_takes_the_call_once_back_and_scores_are_against_the_best_available(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = route(db, capsys, 50)  # `until` day 40 has passed
    e1, e2, e3 = decay(50, 0), decay(50, 10, 11), 0.2 * decay(50, 12)
    assert (answer["owner_available"], answer["route_to"], answer["department"]) == (True, "e1", "billing")
    assert [(c["employee_id"], c["score"]) for c in answer["candidates"]] == [
        ("e2", 100), ("e3", round(100 * e3 / e2)),
    ]
    assert e2 > e1  # A_max is e2's, not the owner's
    # A departed employee is never a candidate; an absence without `until` lasts until the return.
    assert [c["employee_id"] for c in route(db, capsys, 70)["candidates"]] == ["e2"]
    assert route(db, capsys, 85)["route_to"] == "e2"
    assert route(db, capsys, 95)["route_to"] == "e1"


def test_with_nobody_available_the_department_of_the_latest_touch_routes(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert route(db, capsys, 13)["route_to"] == "e1"
    # By default, the customer's latest event, broadcasts included: day 100, when e1 and e2 are away.
    assert route(db, capsys, None) == route(db, capsys, 100)
    late = route(db, capsys, 110)
    assert (late["owner_available"], late["candidates"], late["route_to"]) == (False, [], None)
    assert late["department"] == "sales"  # the customer's latest touch with any employee


def test_an_unknown_customer_and_the_terminal_answer(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", "nobody", "--db", str(db)]) == 1
    assert "customer nobody has no event" in capsys.readouterr().err
    assert main(["route", "c1", "--db", str(db), "--at", at(30)]) == 0
    out = capsys.readouterr().out
    assert "owner       e1 (not available)" in out and "route to    e2" in out and "candidate 1 e2" in out
