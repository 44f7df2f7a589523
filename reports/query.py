"""`spoc sql`: one query on an analytics file, printed as a readable table or as CSV."""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import duckdb

from ledger.errors import TerminalError
from projections.reading import read_analytics
from reports import formatting as f
from reports.terminal import DataTable
from reports.terminal import console as output

_EXPLAIN = re.compile(r"^\s*EXPLAIN(\s+ANALY[SZ]E)?\s", re.IGNORECASE)
HINT = "(the tables and views are described in docs/analytics.md)"


def print_query(db: str | Path, query: str, *, max_rows: int = 50, csv: bool = False) -> None:
    """Run ``query`` (queries only, see :func:`queries_only`) and print its last result."""
    con = read_analytics(db, spec_names_only=True)
    try:
        try:
            statements = queries_only(con, query)
            cursor = con
            for statement in statements:
                cursor = con.execute(statement)
        except duckdb.Error as error:
            raise TerminalError(f"{error}\n{HINT}") from error
        print_result(cursor, max_rows=max_rows, csv=csv)
    finally:
        con.close()


def print_result(cursor: duckdb.DuckDBPyConnection, *, max_rows: int = 50, csv: bool = False) -> None:
    """A query's result as a table of data (markup and control characters shown, not run), or as CSV."""
    if not cursor.description:  # a statement without a result set (duckdb's stubs say it is a list)
        return
    header = [d[0] for d in cursor.description]
    if csv:
        _write_csv(header, cursor)
        return
    rows = cursor.fetchmany(max_rows + 1)
    table = DataTable(header_style="bold")
    for i, name in enumerate(header):
        numeric = bool(rows) and isinstance(next((r[i] for r in rows if r[i] is not None), None), (int, float))
        table.add_column(f.as_data(name), justify="right" if numeric else "left", min_width=len(name))
    for row in rows[:max_rows]:
        table.add_row(*(f.cell(v) for v in row))
    console = output()
    console.print(table)
    shown = min(len(rows), max_rows)
    more = " (more rows not shown; raise --max-rows or use --csv)" if len(rows) > max_rows else ""
    console.print(f"{shown:,} row{'s' if shown != 1 else ''}{more}", style="dim")


def queries_only(con: duckdb.DuckDBPyConnection, query: str) -> list[duckdb.Statement]:
    """The statements of ``query``, refused unless each one only reads (SELECT, WITH, FROM, DESCRIBE,
    SHOW, SUMMARIZE, VALUES, or EXPLAIN of those): a reader must not DETACH the file and ATTACH it again
    writable, which DuckDB allows even with external access off (the file's path stays allowed)."""
    statements = con.extract_statements(query)
    for statement in statements:
        text = statement.query
        if statement.type == duckdb.StatementType.EXPLAIN and (explained := _EXPLAIN.match(text)):
            inner = con.extract_statements(text[explained.end():])
            allowed = len(inner) == 1 and inner[0].type == duckdb.StatementType.SELECT
        else:
            allowed = statement.type == duckdb.StatementType.SELECT
        if not allowed:
            raise TerminalError(
                f"spoc sql runs queries only (SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN); "
                f"refused {_article(statement.type.name)} {statement.type.name} statement: {f.as_data(text.strip())[:200]}\n{HINT}"
            )
    return statements


def _write_csv(header: list[str], cursor: duckdb.DuckDBPyConnection) -> None:
    """Every row; a text cell that a spreadsheet would run as a formula starts with ``'`` (``f.csv_cell``)."""
    writer = csv.writer(sys.stdout)
    writer.writerow([f.csv_cell(name) for name in header])
    while batch := cursor.fetchmany(10_000):
        writer.writerows([f.csv_cell(v) for v in row] for row in batch)


def _article(word: str) -> str:
    return "an" if word[:1] in "AEIOU" else "a"
