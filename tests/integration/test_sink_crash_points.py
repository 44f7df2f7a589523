"""The DuckDB sink SIGKILLed inside an erasure's work, at each named point (``SPOC_FAILPOINT``): right
after the erasure's transaction commits, inside the compaction, and inside the publish of the
compacted file.  Started again, it finishes the compaction it owed, removes the half-made copies,
and the erased customer is in no row of either file and no byte of any file."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import duckdb
import orjson
import pytest

from benchmarks.workload import generate
from processors.runtime.failpoints import FAILPOINT_ENV
from spoc.worker_process import sink_process
from tests.integration.test_erasure import CASE, WHO, _history
from tests.live import project, publish_file, running, wait_for_workers, worker

STALE_COPY = {"sink-after-commit": None, "sink-compacting": ".compact", "sink-publishing-compacted": ".tmp"}


def _text_columns(db: Path) -> list[tuple[str, str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE NOT internal "
            "AND (data_type IN ('VARCHAR', 'BLOB', 'JSON') OR data_type LIKE '%[]' OR data_type LIKE 'STRUCT%')"
        ).fetchall()


def _rows_naming(db: Path, needle: str) -> dict[str, int]:
    """Per table.column, the rows whose value (as text) holds ``needle``: SQL over every text and blob column."""
    found = {}
    with duckdb.connect(str(db), read_only=True) as con:
        for table, column in _text_columns(db):
            row = con.execute(f'SELECT count(*) FROM "{table}" WHERE CAST("{column}" AS VARCHAR) LIKE ?', [f"%{needle}%"]).fetchone()
            if row and row[0]:
                found[f"{table}.{column}"] = row[0]
    return found


@pytest.mark.parametrize("point", list(STALE_COPY))
def test_a_sink_killed_inside_an_erasure_finishes_it_when_started_again(tmp_path: Path, pipeline_bootstrap: str, point: str) -> None:
    history = tmp_path / "history.jsonl"
    history.write_bytes(b"\n".join([*generate(2_000, customers=200, seed=9), *_history(8)]) + b"\n")
    erasure = tmp_path / "erasure.jsonl"
    erasure.write_bytes(orjson.dumps({
        "type": "customer_erased", "event_id": f"{WHO}-erased", "occurred_at": "2024-06-01T00:00:00+00:00", "customer_id": WHO,
    }) + b"\n")
    db = tmp_path / "live.duckdb"
    group = f"spoc-test-{uuid.uuid4().hex[:8]}"
    publish_file(pipeline_bootstrap, history)
    ledger = f"sqlite:///{tmp_path}/ledger.sqlite"
    with running([worker(pipeline_bootstrap, ledger, tmp_path / "worker.log", group)]) as [live]:
        wait_for_workers(pipeline_bootstrap, [live])
        project(pipeline_bootstrap, db, ledger)
        assert _rows_naming(db, WHO), "the search must find the customer first"
        publish_file(pipeline_bootstrap, erasure)
        wait_for_workers(pipeline_bootstrap, [live])

        killed = sink_process(pipeline_bootstrap, ledger, db, tmp_path / "sink.log", env={FAILPOINT_ENV: point})
        assert killed.wait(120) == -signal.SIGKILL, "the sink must die at the failpoint, in the erasure's work"
        copies = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(f".{db.name}") and not p.name.endswith(".wal"))
        suffix = STALE_COPY[point]
        if suffix is not None:
            assert any(name.endswith(suffix) for name in copies), copies  # killed mid-copy, as meant
        with duckdb.connect(str(db.with_name(db.name + ".sink")), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM sink_compaction_pending").fetchone() == (1,)

        project(pipeline_bootstrap, db, ledger)  # started again: finishes what it owed
    files = [p for p in tmp_path.iterdir() if p.name.startswith((db.name, f".{db.name}"))]
    assert not [p.name for p in files if p.name.endswith((".compact", ".tmp"))], "a half-made copy stayed"
    for path in (db, db.with_name(db.name + ".sink")):
        assert _rows_naming(path, WHO) == {} and _rows_naming(path, CASE) == {}
        with duckdb.connect(str(path), read_only=True) as con:
            (customers,) = con.execute("SELECT count(DISTINCT customer_id) FROM touchpoints").fetchone() or (0,)
        assert customers > 150
    with duckdb.connect(str(db.with_name(db.name + ".sink")), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sink_compaction_pending").fetchone() == (0,)  # nothing owed now
    for path in files:
        assert WHO.encode() not in path.read_bytes() and CASE.encode() not in path.read_bytes(), path.name
