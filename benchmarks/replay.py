"""Replay throughput and peak memory, with a baseline measured in the same run.

    python benchmarks/replay.py                       # 1M touchpoints, 3 runs
    python benchmarks/replay.py --events 200000 --runs 5

Prints, as medians of the runs:
- the baseline: reading and validating the same file (msgspec), events/s;
- `spoc replay` end to end (file -> ledger store + DuckDB), in one process and
  split over worker processes (one per core), events/s and the ratio to the
  baseline;
- peak memory (RSS) of a replay at 1/4, 1/2 and all of the events over the same
  customers.  There the customers keep meeting new employees and cases, so their
  state grows with the events too;
- so again with a fixed per-customer state (``generate(steady=True)``: the same
  people and cases, a million touches a year, so more touches only mean more
  time), with every touch's history kept (the SPEC's exact default) and with the
  policy's ``late_event_horizon_days`` at 30.
Each replay runs in a fresh process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.workload import generate  # noqa: E402

TOPIC = "topic:"
CHILD = """
import json, os, resource, sys, time
from processors.batch.replay import TopicInput, replay
from spoc.worker_process import memory_mib
from ledger.policy import Policy
source, db, ledger, workers, horizon = sys.argv[1:6]
started = time.perf_counter()
inputs = TopicInput(source[len("topic:"):], "spoc.touchpoints") if source.startswith("topic:") else [source]
policy = Policy(late_event_horizon_days=float(horizon) if horizon != "none" else None)
summary = replay(inputs, db, ledger, workers=int(workers) or None, policy=policy)
print(json.dumps({"seconds": time.perf_counter() - started, "lines": summary.lines,
                  "peak_rss_mb": memory_mib(os.getpid(), "VmHWM"),
                  "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def write_workload(path: Path, events: int, customers: int, steady: bool = False) -> float:
    started = time.perf_counter()
    with path.open("wb") as out:
        for line in generate(events, customers, seed=42, dirty=0.001, steady=steady):
            out.write(line + b"\n")
    return time.perf_counter() - started


def baseline(path: Path) -> float:
    """Read and validate every line: the floor any replay pays."""
    from schemas import decode

    started = time.perf_counter()
    lines = 0
    with path.open("rb") as stream:
        for line in stream:
            decode(line.rstrip(b"\n"))
            lines += 1
    return lines / (time.perf_counter() - started)


def replay_once(source: Path | str, tmp: Path, run: str, workers: str, horizon: str = "none") -> dict[str, float]:
    """`spoc replay` in a fresh process, of a file or (``topic:BOOTSTRAP``) of spoc.touchpoints.

    ``workers`` "0" takes replay's default.  The process's own peak is its VmHWM: ``ru_maxrss``
    would report at least the RSS its parent had when it forked (Linux keeps the high-water
    mark across exec), and a benchmark harness holding a workload is large.  ``horizon`` is
    the policy's ``late_event_horizon_days`` ("none": keep every touch's history).
    """
    db = tmp / f"{run}.duckdb"
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(source), str(db), f"sqlite:///{tmp / run}.ledger.sqlite", workers, horizon],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    state = db.with_name(db.name + ".state")
    result["state_bytes"] = sum(f.stat().st_size for f in state.iterdir()) if state.is_dir() else 0
    for leftover in tmp.glob(f"{run}.*"):
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steady-customers", type=int, default=10_000,
                        help="customers of the fixed-state memory series (each sees ~25 touches by its smallest size)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sizes = sorted({args.events // 4, args.events // 2, args.events})
        files = {}
        for size in sizes:
            files[size] = tmp / f"w{size}.jsonl"
            seconds = write_workload(files[size], size, args.customers)
            print(f"generated {size:,} touchpoints over {args.customers:,} customers in {seconds:.1f} s")
        full = files[args.events]

        base = statistics.median(baseline(full) for _ in range(args.runs))
        print()
        print(f"{'measure':<46}{'median':>14}{'runs':>30}")
        print(f"{'baseline: read + validate (events/s)':<46}{base:>14,.0f}")
        serial: list[dict[str, float]] = []
        for label, workers in (("one process", "1"), (f"split over {os.cpu_count()} processes", str(os.cpu_count()))):
            runs = [replay_once(full, tmp, f"run{i}", workers) for i in range(args.runs)]
            rates = [r["lines"] / r["seconds"] for r in runs]
            rate = statistics.median(rates)
            serial = serial or runs
            print(f"{f'spoc replay, {label} (events/s)':<46}{rate:>14,.0f}{', '.join(f'{r:,.0f}' for r in rates):>30}")
            print(f"{'  ratio to baseline':<46}{rate / base:>14.3f}")
            print(f"{'  peak RSS of the replay process (MiB)':<46}{statistics.median(r['peak_rss_mb'] for r in runs):>14,.0f}")
            state = statistics.median(r["state_bytes"] for r in runs)
            print(f"{'  replay state kept beside the file (bytes/event)':<46}{state / runs[0]['lines']:>14,.1f}")
            if workers != "1":
                print(f"{'  peak RSS of the largest worker (MiB)':<46}{statistics.median(r['worker_peak_rss_mb'] for r in runs):>14,.0f}")
        print()
        print("memory vs events, the same customers meeting more employees and cases (one process, one run each):")
        for size in sizes:
            result = serial[0] if size == args.events else replay_once(files[size], tmp, f"size{size}", "1")
            print(f"  {size:>10,} events  peak RSS {result['peak_rss_mb']:>7,.0f} MiB")
        steady_memory(tmp, sizes, args.steady_customers)


def steady_memory(tmp: Path, sizes: list[int], customers: int) -> None:
    """Peak RSS against events at a fixed per-customer state, every touch kept and with a 30-day horizon."""
    print()
    print(f"memory vs events, {customers:,} customers with the same people and cases, "
          "a million touches a year (one process, one run each):")
    print(f"  {'events':>10}  {'all history (MiB)':>18}  {'horizon 30 days (MiB)':>22}")
    for size in sizes:
        path = tmp / f"steady{size}.jsonl"
        write_workload(path, size, customers, steady=True)
        kept, folded = (replay_once(path, tmp, f"run-steady-{horizon}", "1", horizon)["peak_rss_mb"] for horizon in ("none", "30"))
        print(f"  {size:>10,}  {kept:>18,.0f}  {folded:>22,.0f}")
        path.unlink()


if __name__ == "__main__":
    main()
