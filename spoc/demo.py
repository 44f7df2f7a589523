"""``make demo``: replay the bundled sample company, print the report, write the HTML page.

(The live pipeline — broker, worker, sink — will take over this entry point; until
then the demo shows the batch path, which computes the same tables.)
"""

from __future__ import annotations

from pathlib import Path

from ledger.store import default_ledger_url
from processors.replay import replay
from projections.reading import read_analytics
from reports.data import gather
from reports.html import write_html
from reports.terminal import print_report

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "touchpoints.jsonl.gz"
OUT = ROOT / "out"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    db = OUT / "demo.duckdb"
    for stale in (db, Path(f"{db}.ledger.sqlite")):
        stale.unlink(missing_ok=True)
    print(f"Replaying {SAMPLE.relative_to(ROOT)} ...\n")
    summary = replay([str(SAMPLE)], db, default_ledger_url(db, separate=True))
    print(summary.render(), "\n")
    con = read_analytics(db)
    try:
        report = gather(con)
        (customer,) = con.execute("SELECT customer_id FROM customer_owner ORDER BY customer_id LIMIT 1").fetchone()
    finally:
        con.close()
    print_report(report)
    page = write_html(report, str(db.relative_to(ROOT)), OUT / "report.html")
    rel = db.relative_to(ROOT)
    print(f"\nAnalytics: {rel}   ledger: {rel}.ledger.sqlite   HTML report: {page.relative_to(ROOT)}")
    print("Try:")
    print(f"  .venv/bin/spoc owner {customer} --db {rel}")
    print(f"  .venv/bin/spoc sql --db {rel} \"SELECT * FROM silo_paths LIMIT 5\"")
    print(f"  .venv/bin/spoc replay {SAMPLE.relative_to(ROOT)} --policy policies/default.toml --db out/what-if.duckdb"
          f"   # edit a copy of the policy first")
    print(f"  .venv/bin/spoc compare {rel} out/what-if.duckdb")


if __name__ == "__main__":
    main()
