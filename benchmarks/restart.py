"""Restart and takeover cost: time until a worker serves a new touchpoint, on a first run and after a restart.

For each history size, a fresh embedded broker gets that many touchpoints; then:
- first run: a worker starts on the whole history; the clock runs from its process start until
  ``GET /owners/<id>`` answers for a touchpoint published once the history was worked off;
- restart: the worker is stopped (SIGTERM, as a deploy does; or SIGKILL, as a crash, which
  restores the last periodic checkpoint) and started again; the same clock, for another new touchpoint.

Prints each time, the ratio restart / first run, and the input messages the restart read to
restore (``spoc_partition_restore_messages``).  The target: a restart is a small fraction of the
first run (at most 0.15) that does not grow with history.

    python benchmarks/restart.py [--events 400000 2000000] [--customers 20000] [--stop term|kill]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from benchmarks.workload import generate  # noqa: E402
from processors.kafka.embedded_broker import EmbeddedBroker  # noqa: E402
from processors.kafka.topics import ALL_TOPICS, TOUCHPOINTS, ensure_topics  # noqa: E402
from processors.publish import publish  # noqa: E402
from spoc.worker_process import WorkerProcess, free_port, partition_ends, wait_until_processed  # noqa: E402

PARTITIONS = 3


def _serve_new_touchpoint(bootstrap: str, worker: WorkerProcess, tmp: Path, started: float, n: int) -> float:
    """Publish a touchpoint of a new customer; seconds from ``started`` until the worker answers for it."""
    customer = f"bench-new-{n}"
    line = orjson.dumps({
        "event_id": f"bench-new-{n}-{uuid.uuid4().hex}", "occurred_at": "2026-01-01T00:00:00Z",
        "customer_id": customer, "channel": "phone", "direction": "inbound", "department": "support",
        "employee_id": "bench-agent", "outcome": "resolved",
    })
    path = tmp / f"new-{n}.jsonl"
    path.write_bytes(line + b"\n")
    asyncio.run(publish([str(path)], bootstrap, TOUCHPOINTS))
    while True:
        try:
            status, _ = worker.get(f"/owners/{customer}")
        except OSError:
            status = 0
        if status == 200:
            return time.perf_counter() - started
        assert worker.running, "the worker exited; see its log"
        time.sleep(0.02)


def measure(events: int, customers: int, stop: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="spoc-restart-") as tmp_name, EmbeddedBroker(free_port()) as broker:
        tmp, bootstrap = Path(tmp_name), broker.bootstrap
        history = tmp / "history.jsonl"
        history.write_bytes(b"\n".join(generate(events, customers=customers, seed=7)) + b"\n")
        asyncio.run(ensure_topics(bootstrap, ALL_TOPICS, PARTITIONS))
        subprocess.run([sys.executable, "-m", "spoc", "publish", str(history), "--bootstrap", bootstrap],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        ledger, group = f"sqlite:///{tmp}/ledger.sqlite", f"bench-{uuid.uuid4().hex[:8]}"

        started = time.perf_counter()
        worker = WorkerProcess(bootstrap, ledger, tmp / "worker.log", group)
        try:
            wait_until_processed(partition_ends(bootstrap, TOUCHPOINTS), [worker], timeout=3600)
            first = _serve_new_touchpoint(bootstrap, worker, tmp, started, 1)
            if stop == "term":
                assert worker.terminate(120) == 0
            else:
                worker.kill()
        finally:
            worker.close()

        started = time.perf_counter()
        worker = WorkerProcess(bootstrap, ledger, tmp / "worker.log", group)
        try:
            restart = _serve_new_touchpoint(bootstrap, worker, tmp, started, 2)
            restored = worker.metric("spoc_partition_restore_messages")
            assert worker.terminate(120) == 0
        finally:
            worker.close()
        return {"events": events, "first_s": first, "restart_s": restart, "ratio": restart / first,
                "restored_messages": restored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=[400_000, 2_000_000])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--stop", choices=["term", "kill"], default="term")
    args = parser.parse_args()
    print(f"{'history':>10} {'first run s':>12} {'restart s':>10} {'ratio':>7} {'messages read to restore':>25}")
    for events in args.events:
        row = measure(events, args.customers, args.stop)
        print(f"{events:>10,} {row['first_s']:>12.1f} {row['restart_s']:>10.1f} {row['ratio']:>7.3f} "
              f"{row['restored_messages']:>25,.0f}", flush=True)


if __name__ == "__main__":
    main()
