"""Helpers for tests that replay JSONL files into real DuckDB and SQLite files."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson

from processors.batch.replay import replay
from processors.batch.summary import ReplaySummary
from projections.duckdb_store import VIEWS


def write_jsonl(path: Path, events: Sequence[dict[str, Any] | bytes]) -> Path:
    with path.open("wb") as out:
        for event in events:
            line = event if isinstance(event, bytes) else orjson.dumps(_stringify(event))
            out.write(line + b"\n")
    return path


def _stringify(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in event.items()}


def run_replay(tmp: Path, inputs: list[Path], name: str = "out", **kwargs: Any) -> tuple[Path, ReplaySummary]:
    db = tmp / f"{name}.duckdb"
    summary = replay([str(p) for p in inputs], db, f"sqlite:///{tmp / name}.ledger.sqlite", **kwargs)
    return db, summary


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql).fetchall()


def snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every analysts' table, sorted, without positions (which depend on the input's layout)."""
    result = {}
    for view in (*VIEWS, "rejected_events"):
        columns = [c for (c,) in rows(db, f"SELECT column_name FROM (DESCRIBE {view})")]
        kept = [c for c in columns if c not in ("source", "position", "seq", "raw", "raw_text")]
        result[view] = sorted(rows(db, f"SELECT {', '.join(kept)} FROM {view}"), key=repr)
    return result
