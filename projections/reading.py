"""Read an analytics file without holding it: for reports, `spoc sql` and `spoc compare`.

The file is attached read-only to an in-memory database, the SPEC §7 views are
rebuilt there over its fact tables, and the settings are copied so that a report
can ask for another ``as_of`` without writing to the file.  A writer (the live
sink publishes by rename) is never blocked, and the reader sees one consistent file.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

from ledger.errors import TerminalError
from projections.duckdb_store import FACT_TABLES, INTERNAL_SCHEMA, SPEC_TABLES, quoted, views_sql


def read_analytics(
    path: str | Path, *, as_of: datetime | None = None, writes_to: Path | None = None, spec_names_only: bool = False,
) -> duckdb.DuckDBPyConnection:
    """``writes_to``: the one directory ``COPY … TO`` may write into (``spoc export``); none by default.

    ``spec_names_only`` (``spoc sql``): unqualified names are the SPEC §7 tables alone; the fact tables and
    helper views stay reachable as ``spoc_internal.<name>``. Otherwise (the report's own queries) both resolve.
    """
    path = Path(path)
    if not path.is_file():
        raise TerminalError(
            f"no analytics file at {path}; build one with `spoc replay INPUT --db {path}` "
            f"or follow the live pipeline with `spoc project --db {path}`"
        )
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        con.execute(f"ATTACH '{quoted(path)}' AS analytics (READ_ONLY)")
    except duckdb.Error as error:
        con.close()
        raise TerminalError(
            f"cannot open {path} for reading: {error}. If another process is writing it (spoc replay), "
            "wait for it to finish; the live sink's --db copy can be read at any time"
        ) from error
    missing = [t for t in (*FACT_TABLES, "spoc_settings") if not _has_table(con, t)]
    if missing:
        con.close()
        raise TerminalError(f"{path} is not a SPOC analytics file (no table {missing[0]}); build it with `spoc replay`")
    # Everything in its own schema (a view resolves the names in it against its own schema first); then
    # the SPEC's names alone in `main`, so that SHOW TABLES lists what SPEC §7 promises and nothing else.
    con.execute(f"CREATE SCHEMA {INTERNAL_SCHEMA}; USE memory.{INTERNAL_SCHEMA}")
    for table in FACT_TABLES:
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM analytics.{table}")
    con.execute("CREATE TABLE spoc_settings AS SELECT * FROM analytics.spoc_settings")
    if as_of is not None:
        con.execute("DELETE FROM spoc_settings WHERE key = 'as_of'")
        con.execute("INSERT INTO spoc_settings VALUES ('as_of', ?)", [as_of.isoformat()])
    con.execute(views_sql())
    con.execute("USE memory.main")
    for name in SPEC_TABLES:
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM {INTERNAL_SCHEMA}.{name}")
    if not spec_names_only:
        con.execute(f"SET search_path = 'main,{INTERNAL_SCHEMA}'")
    # A reader reads: no ATTACH of other files (the one attached stays read-only), no COPY TO (but into
    # ``writes_to``), no extensions, no network; and no query can switch these back (`spoc sql` runs
    # the user's SQL here).
    if writes_to is not None:
        con.execute("SET allowed_directories = $dirs", {"dirs": [f"{writes_to.resolve()}/"]})
    con.execute("SET enable_external_access = false; SET autoinstall_known_extensions = false; "
                "SET autoload_known_extensions = false; SET lock_configuration = true")
    return con


def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'analytics' AND table_name = ?", [table]
    ).fetchone()
    return bool(found and found[0])
