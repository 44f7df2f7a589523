"""`GET /route/{customer_id}` latency on a worker that is processing, beside a baseline in the same run.

    python benchmarks/route.py                              # 3 runs
    python benchmarks/route.py --requests-per-second 200 --events-per-second 1000 --seconds 20 --runs 3

Every run starts a fresh embedded broker and one `spoc worker`, publishes a company's history
(so the worker knows its customers), then for --seconds publishes --events-per-second new touches
while a client asks `/route/{customer}` of known customers at --requests-per-second (one request at
a time, paced; latency = the full HTTP round trip on loopback). Baseline: `/metrics` asked the same
way in the same run (the worker's HTTP stack without the route: its event loop, aiohttp, loopback).
The target (issue #32): p99 under 10 ms at 200 requests/s while the worker processes 1,000 events/s.
Figures are medians over the runs; the machine is shared, so read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from aiokafka import AIOKafkaProducer  # noqa: E402

from benchmarks.live import PARTITIONS, percentile, touchpoint  # noqa: E402
from benchmarks.workload import generate  # noqa: E402
from processors.kafka.embedded_broker import EmbeddedBroker  # noqa: E402
from processors.kafka.topics import ALL_TOPICS, TOUCHPOINTS, ensure_topics  # noqa: E402
from spoc.worker_process import WorkerProcess, free_port, partition_ends, wait_until_processed  # noqa: E402


async def publish(bootstrap: str, lines: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for line in lines:
            key = orjson.loads(line).get("customer_id")
            await producer.send(TOUCHPOINTS, line, key=key.encode() if key else None)
        await producer.flush()
    finally:
        await producer.stop()


async def paced_touches(bootstrap: str, rate: float, seconds: float) -> None:
    """New customers' touches at ``rate`` events/s for ``seconds``: the worker keeps processing."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    await producer.start()
    try:
        start, n = time.perf_counter(), 0
        while (elapsed := time.perf_counter() - start) < seconds:
            while n < elapsed * rate:
                customer = f"flow-{n}"
                await producer.send(TOUCHPOINTS, touchpoint(f"flow-ev-{n}", customer), key=customer.encode())
                n += 1
            await asyncio.sleep(0.005)
        await producer.flush()
    finally:
        await producer.stop()


def paced_gets(port: int, paths: list[str], rate: float, seconds: float) -> list[float]:
    """GET each path in turn at ``rate`` requests/s for ``seconds``; each round trip in ms."""
    latencies: list[float] = []
    start = time.perf_counter()
    n = 0
    while (now := time.perf_counter()) - start < seconds:
        due = start + n / rate
        if now < due:
            time.sleep(due - now)
        began = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{paths[n % len(paths)]}", timeout=5) as response:
            response.read()
            assert response.status == 200
        latencies.append(1000 * (time.perf_counter() - began))
        n += 1
    return latencies


def one_run(args: argparse.Namespace, history: list[bytes], customers: list[str], tmp: Path, run: int) -> tuple[list[float], list[float]]:
    with EmbeddedBroker(free_port()) as broker:
        bootstrap = broker.bootstrap
        asyncio.run(ensure_topics(bootstrap, ALL_TOPICS, PARTITIONS))
        asyncio.run(publish(bootstrap, history))
        worker = WorkerProcess(
            bootstrap, f"sqlite:///{tmp}/ledger{run}.sqlite", tmp / "worker.log", f"bench-{uuid.uuid4().hex[:8]}",
        )
        try:
            wait_until_processed(partition_ends(bootstrap, TOUCHPOINTS), [worker], timeout=600)
            results: dict[str, list[float]] = {}
            for name, paths in (("route", [f"/route/{c}" for c in customers]), ("metrics", ["/metrics"])):
                flow = threading.Thread(
                    target=lambda: asyncio.run(paced_touches(bootstrap, args.events_per_second, args.seconds))
                )
                flow.start()
                results[name] = paced_gets(worker.port, paths, args.requests_per_second, args.seconds)
                flow.join()
        finally:
            worker.close()
    return results["route"], results["metrics"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests-per-second", type=float, default=200)
    parser.add_argument("--events-per-second", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--customers", type=int, default=2000, help="customers of the history published first")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    history = list(generate(args.customers * 10, customers=args.customers, seed=7, dirty=0.0))
    customers = sorted({c for line in history if (c := orjson.loads(line).get("customer_id"))})
    runs = []
    with tempfile.TemporaryDirectory() as tmp_name:
        for run in range(args.runs):
            route, metrics = one_run(args, history, customers, Path(tmp_name), run)
            runs.append((route, metrics))
            print(
                f"run {run + 1}: /route p50 {percentile(route, 50):.2f} ms, p99 {percentile(route, 99):.2f} ms "
                f"({len(route)} requests); /metrics p50 {percentile(metrics, 50):.2f} ms, "
                f"p99 {percentile(metrics, 99):.2f} ms",
                flush=True,
            )
    p50 = statistics.median(percentile(r, 50) for r, _ in runs)
    p99 = statistics.median(percentile(r, 99) for r, _ in runs)
    b50 = statistics.median(percentile(m, 50) for _, m in runs)
    b99 = statistics.median(percentile(m, 99) for _, m in runs)
    print()
    print(f"medians of {args.runs} runs: {args.requests_per_second:g} requests/s while {args.events_per_second:g} "
          f"events/s flow, {args.seconds:g} s each")
    print(f"{'measure':<40}{'median':>10}{'baseline':>10}{'ratio':>8}")
    print(f"{'GET /route p50 (ms)':<40}{p50:>10.2f}{b50:>10.2f}{p50 / b50:>8.2f}")
    print(f"{'GET /route p99 (ms)':<40}{p99:>10.2f}{b99:>10.2f}{p99 / b99:>8.2f}")
    print("baseline: GET /metrics on the same worker under the same load")
    print(f"target: p99 < 10 ms ({'met' if p99 < 10 else 'NOT met'})")


if __name__ == "__main__":
    main()
