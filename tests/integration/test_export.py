"""`spoc export --parquet`: every SPEC §7 table and view as Parquet, row for row, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import pytest

from benchmarks.workload import generate
from ledger.errors import TerminalError
from projections.duckdb_store import SPEC_TABLES
from projections.export import BY_MONTH, MANIFEST, export_parquet
from projections.reading import read_analytics
from spoc.cli import main
from tests.replaying import run_replay


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "touchpoints.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in generate(4000, 300, seed=5, dirty=0.02)))
    built, _ = run_replay(path.parent, [path], "base")
    return built


def _parquet(directory: Path, name: str) -> str:
    if name in BY_MONTH:
        return f"read_parquet('{directory / name}/*/*.parquet', hive_partitioning = true)"
    return f"read_parquet('{directory / name}.parquet')"


def _differences(db: Path, directory: Path, name: str, as_of: datetime | None = None) -> int:
    """Rows in the view and not in the export, plus the other way round (multisets, every column)."""
    con = read_analytics(db, as_of=as_of)
    try:
        columns = ", ".join(f'"{c[0]}"' for c in con.execute(f"SELECT * FROM {name} LIMIT 0").description)
        con.execute(f"CREATE TEMP TABLE expected AS SELECT {columns} FROM {name}")
        expected = con.execute("SELECT * FROM expected").fetchall()
    finally:
        con.close()
    exported = duckdb.connect()
    try:
        exported.execute("SET TimeZone = 'UTC'")
        got = exported.execute(f"SELECT {columns} FROM {_parquet(directory, name)}").fetchall()
    finally:
        exported.close()
    key = repr
    return len(set(map(key, expected)) ^ set(map(key, got))) + abs(len(expected) - len(got))


def test_every_spec_table_is_exported_row_for_row(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "parquet"
    assert main(["export", "--db", str(db), "--parquet", str(out)]) == 0
    manifest = orjson.loads((out / MANIFEST).read_bytes())
    assert set(manifest["rows"]) == set(SPEC_TABLES)
    for name in SPEC_TABLES:
        assert _differences(db, out, name) == 0, name
    assert manifest["rows"]["touchpoints"] > 1000 and manifest["rows"]["journey_outcomes"] > 100
    # Only the SPEC's names: no internal fact table, no helper view.
    written = {p.name.removesuffix(".parquet") for p in out.iterdir()} - {MANIFEST}
    assert written == set(SPEC_TABLES)
    months = sorted(p.name for p in (out / "touchpoints").iterdir())
    assert len(months) >= 2 and all(m.startswith("month=20") for m in months)


def test_a_second_export_replaces_the_first_and_honours_as_of(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "parquet"
    export_parquet(db, out)
    stale = out / "touchpoints" / "month=1999-01"
    stale.mkdir()
    (stale / "data_0.parquet").write_bytes(b"not parquet")
    as_of = datetime(2024, 6, 1, tzinfo=UTC)
    exported = export_parquet(db, out, as_of=as_of)
    assert exported.as_of == as_of
    assert not stale.exists()
    assert orjson.loads((out / MANIFEST).read_bytes())["as_of"] == "2024-06-01T00:00:00+00:00"
    for name in ("customer_metrics", "journey_outcomes", "follow_ups"):
        assert _differences(db, out, name, as_of) == 0, name


def test_an_unwritable_directory_is_named(db: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(TerminalError, match="cannot create the export directory"):
        export_parquet(db, blocker / "parquet")
