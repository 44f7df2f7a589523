"""How the ledger's memory grows with events when the customers' state does not.

    python benchmarks/memory_growth.py                    # 5M touches, sampled every 1M
    python benchmarks/memory_growth.py --events 2000000 --step 500000

Feeds the shared intake step (validation, duplicate index, ledger core; no stores, whose
memory is capped or on disk) a steady workload: 10,000 customers, each with the same
person in each department and three cases, a million touches a year
(``generate(steady=True)``), so more touches only mean more time.  Once per step it
prints the resident memory and the bytes each further touch added, with every touch's
history kept (the SPEC's exact default) and with the policy's
``late_event_horizon_days`` at 30, each in a fresh process.

The baseline is what the duplicate index's arrays grew by in the same run (16 bytes an
event id): SPEC §1 never lets an event id be forgotten, so no reading of the SPEC grows
by less.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, os, sys
from benchmarks.workload import generate
from ledger.records import Position
from ledger.intake import Intake
from ledger.policy import Policy
from processors.runtime.heap import chunked_collection, settle
from processors.batch.replay_pass import CHUNK
from spoc.worker_process import memory_mib
events, step, customers, horizon = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
intake = Intake(Policy(late_event_horizon_days=None if horizon == "none" else float(horizon)))
with chunked_collection():
    for seq, line in enumerate(generate(events, customers, seed=42, steady=True), 1):
        intake.take(line, Position("steady", seq, seq))
        if seq % CHUNK == 0:
            intake.drain()
            settle(collect=seq == CHUNK)  # as a file replay does
        if seq % step == 0:
            print(json.dumps({"touches": seq, "rss_mib": memory_mib(os.getpid()), "index_bytes": intake.dedup.folded.nbytes}),
                  flush=True)
"""


def series(events: int, step: int, customers: int, horizon: str) -> list[dict[str, float]]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(events), str(step), str(customers), horizon],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--step", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=10_000)
    args = parser.parse_args()

    runs = {horizon: series(args.events, args.step, args.customers, horizon) for horizon in ("none", "30")}
    print(f"the intake step on {args.customers:,} customers with a fixed state, resident memory (one process each):")
    print(f"  {'touches':>10}  {'all history':>11} {'B/touch':>8}  {'horizon 30 days':>15} {'B/touch':>8}"
          f"  {'baseline: duplicate index B/touch':>33}")
    rows = list(zip(runs["none"], runs["30"]))
    for (kept, folded), before in zip(rows, [None, *rows]):
        grew = ["", "", ""] if before is None else [
            f"{per_touch(before[0], kept, 'rss_mib', 2**20):.1f}", f"{per_touch(before[1], folded, 'rss_mib', 2**20):.1f}",
            f"{per_touch(before[1], folded, 'index_bytes', 1):.1f}",
        ]
        print(f"  {kept['touches']:>10,}  {kept['rss_mib']:>7,.0f} MiB {grew[0]:>8}  {folded['rss_mib']:>11,.0f} MiB"
              f" {grew[1]:>8}  {grew[2]:>33}")
    if len(rows) > 1:
        (_, earlier), (_, last) = rows[-2], rows[-1]
        growth, index = per_touch(earlier, last, "rss_mib", 2**20), per_touch(earlier, last, "index_bytes", 1)
        print(f"\nwith the horizon, the last step grew {growth:.1f} bytes a touch, {growth / index:.2f} x the duplicate index's")


def per_touch(before: dict[str, float], after: dict[str, float], key: str, unit: float) -> float:
    """Bytes of ``key`` (in ``unit`` bytes) added per touch between two samples."""
    return (after[key] - before[key]) * unit / (after["touches"] - before["touches"])


if __name__ == "__main__":
    main()
