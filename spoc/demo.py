"""``make demo``: replay the bundled sample company and print a short report.

(The live pipeline — broker, worker, sink — will take over this entry point; until
then the demo shows the batch path, which computes the same tables.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from ledger.store import default_ledger_url
from processors.replay import replay

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "touchpoints.jsonl.gz"
OUT = ROOT / "out"


def _table(title: str, con: duckdb.DuckDBPyConnection, sql: str) -> str:
    cursor = con.execute(sql)
    header = [d[0] for d in cursor.description]
    body = [[_cell(v) for v in row] for row in cursor.fetchall()]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]
    lines = [title, "  " + "  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  " + "  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in body]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1%}" if 0.0 <= value <= 1.0 else f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    db = OUT / "demo.duckdb"
    for stale in (db, Path(f"{db}.ledger.sqlite")):
        stale.unlink(missing_ok=True)
    print(f"Replaying {SAMPLE.relative_to(ROOT)} ...\n")
    summary = replay([str(SAMPLE)], db, default_ledger_url(db))
    print(summary.render(), "\n")
    with duckdb.connect(str(db), read_only=True) as con:
        print(_table("Churn by owner continuity (% of touches handled by the customer's person)", con,
                     "SELECT bucket, customers, churned, churn_rate FROM churn_by_continuity"), "\n")
        print(_table("Churn by silo handoffs", con,
                     "SELECT bucket, customers, churned, churn_rate FROM churn_by_handoffs"), "\n")
        print(_table("Top silo paths", con,
                     "SELECT from_department, to_department, handoffs, reexplained_rate, repeat_contact_rate "
                     "FROM silo_paths LIMIT 5"), "\n")
        (customer,) = con.execute("SELECT customer_id FROM customer_owner ORDER BY customer_id LIMIT 1").fetchone()
    print(f"Analytics: {db.relative_to(ROOT)}   ledger: {db.relative_to(ROOT)}.ledger.sqlite")
    print("Try:")
    print(f"  .venv/bin/spoc owner {customer} --db {db.relative_to(ROOT)}")
    print(f"  .venv/bin/python -c \"import duckdb; print(duckdb.connect('{db.relative_to(ROOT)}', read_only=True)"
          ".sql('from customer_metrics limit 5'))\"")


if __name__ == "__main__":
    main()
