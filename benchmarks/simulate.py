"""Simulator throughput to a file, with a baseline measured in the same run.

    python benchmarks/simulate.py                          # 8,000 / 50,000 / 200,000 customers, 3 runs
    python benchmarks/simulate.py --customers 8000 --runs 5

Prints, as medians of the runs, lines/s written to a ``.jsonl`` file:
- the baseline: the same company with its regions simulated one after the other
  in this process;
- ``spoc simulate`` as shipped (one process per region), and its ratio to the baseline;
- the same to ``.jsonl.gz``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.company import Settings  # noqa: E402
from simulator.write import write_simulation  # noqa: E402


def median_rate(runs: int, run: Callable[[], float]) -> float:
    return statistics.median(run() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, nargs="+", default=[8000, 50000, 200000])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{'customers':>10} {'lines':>10} {'one process':>12} {'regions':>10} {'ratio':>6} {'regions .gz':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        plain, gz = Path(tmp) / "company.jsonl", Path(tmp) / "company.jsonl.gz"
        for customers in args.customers:
            settings = Settings(customers=customers, days=args.days, seed=1)
            lines = write_simulation(settings, plain).lines
            alone = median_rate(args.runs, lambda: write_simulation(settings, plain, processes=False).per_second)  # noqa: B023 (called at once)
            regions = median_rate(args.runs, lambda: write_simulation(settings, plain).per_second)  # noqa: B023 (called at once)
            zipped = median_rate(args.runs, lambda: write_simulation(settings, gz).per_second)  # noqa: B023 (called at once)
            print(f"{customers:>10,} {lines:>10,} {alone:>12,.0f} {regions:>10,.0f} {regions / alone:>5.2f}x {zipped:>12,.0f}")


if __name__ == "__main__":
    main()
