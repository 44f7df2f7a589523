"""Peak memory and disk of `spoc replay` against the length of history, at a fixed state cache (SPEC §2).

    python -m benchmarks.bounded_memory                          # 0.6M, 2.4M and 10M events
    python -m benchmarks.bounded_memory --sizes 600000 2400000 --cache-mb 128

A steady workload (``generate(steady=True)``: 10,000 customers with the same people and cases, a
million touches a year), so more events only mean more time.  Each replay runs in a fresh process
with ``--state-cache-mb`` and prints, per size: events/s, the process's peak RSS and its ratio to
the smallest size's, the scratch space's peak (customers and event ids beyond the cache), and the
replay state kept beside the file, per event.  Two series: every touch's history kept (the SPEC's
exact default), where each customer's state grows with its touches, and the policy's
``late_event_horizon_days`` at 30, where it stops growing; the duplicate index grows in both.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from benchmarks.workload import generate

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import json, os, sys, time
from processors.batch.replay import replay
from spoc.worker_process import memory_mib
from ledger.policy import Policy
source, db, ledger, horizon, cache_mb = sys.argv[1:6]
policy = Policy(late_event_horizon_days=float(horizon) if horizon != "none" else None)
started = time.perf_counter()
summary = replay([source], db, ledger, workers=1, policy=policy, state_cache_mb=float(cache_mb))
print(json.dumps({"seconds": time.perf_counter() - started, "lines": summary.lines,
                  "peak_rss_mb": memory_mib(os.getpid(), "VmHWM")}))
"""


def _bytes_under(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # deleted while walking
                total += (Path(root) / name).stat().st_size
    return total


def replay_once(source: Path, tmp: Path, horizon: str, cache_mb: float) -> dict[str, float]:
    db = tmp / "run.duckdb"
    state = tmp / "run.duckdb.state"
    peak_scratch = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_scratch
        while not done.wait(0.5):
            peak_scratch = max(peak_scratch, _bytes_under(state / "scratch"))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(source), str(db), f"sqlite:///{tmp / 'run'}.ledger.sqlite", horizon,
             str(cache_mb)],
            capture_output=True, text=True, check=True, cwd=ROOT,
        ).stdout
    finally:
        done.set()
        sampler.join()
    result = json.loads(out.strip().splitlines()[-1])
    result["scratch_bytes"] = peak_scratch
    result["state_bytes"] = _bytes_under(state)
    for leftover in tmp.glob("run.*"):
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[600_000, 2_400_000, 10_000_000])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--cache-mb", type=float, default=256)
    parser.add_argument("--kept-up-to", type=int, default=2_400_000,
                        help="largest size of the every-touch-kept series (it slows as customers outgrow the cache)")
    args = parser.parse_args()
    print(f"steady workload, {args.customers:,} customers; --state-cache-mb {args.cache_mb:g}; one process")
    print(f"{'history':<22}{'events':>12}{'events/s':>10}{'peak RSS MiB':>14}{'x smallest':>12}"
          f"{'scratch B/ev':>14}{'state B/ev':>12}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for label, horizon, limit in (("every touch kept", "none", args.kept_up_to), ("horizon 30 days", "30", None)):
            smallest = None
            for size in sorted(args.sizes):
                if limit is not None and size > limit:
                    continue
                source = tmp / "steady.jsonl"
                with source.open("wb") as out:
                    for line in generate(size, args.customers, seed=42, dirty=0.001, steady=True):
                        out.write(line + b"\n")
                result = replay_once(source, tmp, horizon, args.cache_mb)
                source.unlink()
                smallest = smallest or result["peak_rss_mb"]
                lines = result["lines"]
                print(f"{label:<22}{lines:>12,}{lines / result['seconds']:>10,.0f}{result['peak_rss_mb']:>14,.0f}"
                      f"{result['peak_rss_mb'] / smallest:>12.2f}{result['scratch_bytes'] / lines:>14.1f}"
                      f"{result['state_bytes'] / lines:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
