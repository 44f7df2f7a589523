"""`spoc sql`: one query on an analytics file, printed as a readable table or as CSV."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import duckdb
from rich.table import Table

from ledger.errors import TerminalError
from projections.reading import read_analytics
from reports import formatting as f
from reports.terminal import console as output


def print_query(db: str | Path, query: str, *, max_rows: int = 50, csv: bool = False) -> None:
    con = read_analytics(db)
    try:
        try:
            cursor = con.execute(query)
        except duckdb.Error as error:
            raise TerminalError(f"{error}\n(the tables and views are described in docs/analytics.md)") from error
        if not cursor.description:  # a statement without a result set (duckdb's stubs say it is a list)
            return
        header = [d[0] for d in cursor.description]
        if csv:
            _write_csv(header, cursor)
            return
        rows = cursor.fetchmany(max_rows + 1)
        table = Table(header_style="bold")
        for i, name in enumerate(header):
            numeric = bool(rows) and isinstance(next((r[i] for r in rows if r[i] is not None), None), (int, float))
            table.add_column(name, justify="right" if numeric else "left", min_width=len(name))
        for row in rows[:max_rows]:
            table.add_row(*(f.cell(v) for v in row))
        console = output()
        console.print(table)
        shown = min(len(rows), max_rows)
        more = " (more rows not shown; raise --max-rows or use --csv)" if len(rows) > max_rows else ""
        console.print(f"{shown:,} row{'s' if shown != 1 else ''}{more}", style="dim")
    finally:
        con.close()


def _write_csv(header: list[str], cursor: duckdb.DuckDBPyConnection) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow(header)
    while batch := cursor.fetchmany(10_000):
        writer.writerows(batch)
