"""What follow-ups (SPEC §8) cost a replay: throughput with them against without, measured in one run.

    python benchmarks/follow_ups.py                    # 400k touchpoints, 5 runs of each, alternating
    python benchmarks/follow_ups.py --events 1000000 --runs 3

"Without" is the same `spoc replay` in a fresh process whose core has the follow-up rules
replaced by ones that do nothing (no state, no rows): the core, intake, ledger store and
DuckDB writes are otherwise the same code.  Prints each variant's median events/s, the
ratio of the medians and the median of the ratios of the runs made side by side (robust
to the machine drifting between pairs), and the follow-up rows written.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.replay import write_workload  # noqa: E402

CHILD = """
import json, sys, time
import duckdb
import ledger.core
from processors.batch.replay import replay

class NoFollowUps:
    facts, announcements = [], None
    def __init__(self, *args, **kwargs): pass
    def advance(self, *args): pass
    def come_due(self, *args): pass
    def touch(self, *args): pass
    def owner_changed(self, *args): pass
    def churned(self, *args): pass
    def forget(self, *args): pass

source, db, ledger_url, variant = sys.argv[1:5]
if variant == "without":
    ledger.core.FollowUpRules = NoFollowUps
started = time.perf_counter()
summary = replay([source], db, ledger_url, workers=1)
seconds = time.perf_counter() - started
with duckdb.connect(db, read_only=True) as con:
    (rows,) = con.execute("SELECT count(*) FROM follow_up_facts").fetchone()
print(json.dumps({"rate": summary.lines / seconds, "rows": rows}))
"""


def replay_once(source: Path, tmp: Path, run: int, variant: str) -> dict[str, float]:
    db = tmp / f"{variant}{run}.duckdb"
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(source), str(db), f"sqlite:///{tmp}/{variant}{run}.ledger.sqlite", variant],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout
    for leftover in tmp.glob(f"{variant}{run}.*"):
        subprocess.run(["rm", "-rf", str(leftover)], check=True)
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        source = tmp / "touchpoints.jsonl"
        write_workload(source, args.events, args.customers)
        results: dict[str, list[dict[str, float]]] = {"with": [], "without": []}
        for run in range(args.runs):  # alternating, so that the machine's moods fall on both
            for variant in ("with", "without"):
                results[variant].append(replay_once(source, tmp, run, variant))
    rates = {variant: [r["rate"] for r in runs] for variant, runs in results.items()}
    medians = {variant: statistics.median(values) for variant, values in rates.items()}
    print(f"spoc replay of {args.events:,} touchpoints over {args.customers:,} customers, one process, "
          f"{args.runs} runs each, alternating")
    for variant in ("without", "with"):
        runs = ", ".join(f"{r:,.0f}" for r in rates[variant])
        print(f"  {variant + ' follow-ups':<22}{medians[variant]:>10,.0f} events/s   (runs: {runs})")
    pairs = [w / wo for w, wo in zip(rates["with"], rates["without"])]
    print(f"  ratio with / without  {medians['with'] / medians['without']:>10.3f}  (of the medians)")
    print(f"                        {statistics.median(pairs):>10.3f}  (median of the runs side by side: "
          f"{', '.join(f'{p:.3f}' for p in pairs)})")
    print(f"  follow-up rows        {int(results['with'][0]['rows']):>10,}  (without: {int(results['without'][0]['rows'])})")


if __name__ == "__main__":
    main()
