"""`spoc export --parquet DIR`: the SPEC §7 tables and views as Parquet files, for tools beyond DuckDB.

Only the SPEC's names are exported (the internal fact tables behind the views are not), each as it
reads at the file's ``as_of`` (or the one given). The event-grained tables with a time of their own
are split by month (Hive-style ``month=YYYY-MM`` folders), so a reader that filters on a month reads
only its files; the rest are one file each. ``spoc-export.json`` records the source, ``as_of`` and
the row counts.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from ledger.errors import TerminalError
from projections.duckdb_store import SPEC_TABLES, quoted
from projections.reading import read_analytics

BY_MONTH = {"touchpoints": "occurred_at", "handoffs": "occurred_at"}
"""Exported with a ``month`` partition column taken from the named time (UTC)."""
MANIFEST = "spoc-export.json"


@dataclass(frozen=True, slots=True)
class Exported:
    directory: Path
    as_of: datetime
    rows: dict[str, int]


def export_parquet(db: str | Path, directory: str | Path, *, as_of: datetime | None = None) -> Exported:
    """Write every SPEC §7 table to ``directory`` (created; earlier exports of the same names replaced)."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TerminalError(f"cannot create the export directory {directory}: {error.strerror}") from error
    con = read_analytics(db, as_of=as_of, writes_to=directory)
    try:
        found = con.execute("SELECT as_of FROM spoc_window").fetchone()
        assert found is not None  # spoc_window is one row by construction
        rows: dict[str, int] = {}
        for name in SPEC_TABLES:
            target = directory / name if name in BY_MONTH else directory / f"{name}.parquet"
            _remove(target)
            if name in BY_MONTH:
                query = f"SELECT *, strftime({BY_MONTH[name]} AT TIME ZONE 'UTC', '%Y-%m') AS month FROM {name}"
                options = "FORMAT parquet, PARTITION_BY (month)"
            else:
                query, options = f"SELECT * FROM {name}", "FORMAT parquet"
            counted = con.execute(f"COPY ({query}) TO '{quoted(target)}' ({options})").fetchone()
            rows[name] = int(counted[0]) if counted else 0
    finally:
        con.close()
    exported = Exported(directory, found[0], rows)
    (directory / MANIFEST).write_bytes(orjson.dumps(
        {"source": str(Path(db).resolve()), "as_of": exported.as_of, "rows": rows, "partitioned_by_month": list(BY_MONTH)},
        option=orjson.OPT_INDENT_2,
    ))
    return exported


def _remove(target: Path) -> None:
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
