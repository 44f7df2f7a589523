"""Live pipeline latency and throughput, each beside a baseline measured in the same run.

    python benchmarks/live.py                                   # 3 runs
    python benchmarks/live.py --rate 200 --seconds 20 --burst 200000 --runs 3

Every run starts a fresh embedded broker and one `spoc worker` process, then measures:

- latency at a steady --rate: each touchpoint gives a new customer its first owner;
  latency = its `spoc.owner-changed` event consumed - the touchpoint handed to the
  producer.  Baseline: the same touchpoints read back from `spoc.touchpoints` by a
  plain consumer in the same process (the broker's own round trip).
- throughput: --burst generated touchpoints published by `spoc publish` while the
  worker runs; events/s of the worker from its first to its last processed message.
  Baseline: a plain aiokafka consumer with orjson reading the same topic (the ceiling).

Figures are medians over the runs; the machine is shared, so read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402

from benchmarks.workload import generate  # noqa: E402
from processors.kafka.embedded_broker import EmbeddedBroker  # noqa: E402
from processors.kafka.reading import assign_topic, reader  # noqa: E402
from processors.kafka.topics import (  # noqa: E402
    ALL_TOPICS,
    OWNER_CHANGED,
    TOUCHPOINTS,
    ensure_topics,
)
from spoc.worker_process import (  # noqa: E402
    WorkerProcess,
    free_port,
    memory_mib,
    partition_ends,
    wait_until_processed,
)

PARTITIONS = 3


@dataclass
class RunResult:
    latency_ms: list[float]
    round_trip_ms: list[float]
    worker_rate: float
    ceiling_rate: float
    worker_peak_rss_mb: float


def touchpoint(event_id: str, customer_id: str) -> bytes:
    """A resolved touch with an employee: the customer's first owner at once (SPEC §3 rule 1)."""
    return orjson.dumps({
        "event_id": event_id, "occurred_at": datetime.now(UTC).isoformat(), "customer_id": customer_id,
        "channel": "phone", "direction": "inbound", "department": "support", "employee_id": "sup-001",
        "outcome": "resolved",
    })


async def _follow(consumer: AIOKafkaConsumer, field: str, arrived: dict[str, float]) -> None:
    """Note when each message (by ``field`` of its JSON value) reaches this process."""
    while True:
        fetched = await consumer.getmany(timeout_ms=100)
        now = time.perf_counter()
        for records in fetched.values():
            for record in records:
                arrived.setdefault(orjson.loads(record.value)[field], now)


async def _at_end(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    consumer = reader(bootstrap)
    await consumer.start()
    for tp, end in (await assign_topic(consumer, bootstrap, topic)).items():
        consumer.seek(tp, end)
    return consumer


async def measure_latency(bootstrap: str, rate: float, seconds: float) -> tuple[list[float], list[float]]:
    owner_changed = await _at_end(bootstrap, OWNER_CHANGED)
    touchpoints = await _at_end(bootstrap, TOUCHPOINTS)
    decided: dict[str, float] = {}
    delivered: dict[str, float] = {}
    followers = [
        asyncio.create_task(_follow(owner_changed, "trigger_event_id", decided)),
        asyncio.create_task(_follow(touchpoints, "event_id", delivered)),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    run = uuid.uuid4().hex[:8]
    try:
        # Warm up until the worker answers (it has joined its group and read its partitions).
        warm = 0
        while not any(key.startswith(f"warm-{run}") for key in decided):
            await producer.send(TOUCHPOINTS, touchpoint(f"warm-{run}-{warm}", f"w-{run}-{warm}"), key=f"w-{run}-{warm}".encode())
            warm += 1
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)
        sent: dict[str, float] = {}
        interval = 1 / rate
        next_at = time.perf_counter()
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            event_id, customer_id = f"lat-{run}-{i}", f"c-{run}-{i}"
            value = touchpoint(event_id, customer_id)
            sent[event_id] = time.perf_counter()
            await producer.send(TOUCHPOINTS, value, key=customer_id.encode())
            next_at += interval
        deadline = time.perf_counter() + 30
        while len(decided.keys() & sent.keys()) < len(sent) and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        missing = len(sent.keys() - decided.keys())
        if missing:
            raise RuntimeError(f"{missing} owner-changed events never arrived")
        latency = [(decided[e] - sent[e]) * 1000 for e in sent]
        round_trip = [(delivered[e] - sent[e]) * 1000 for e in sent]
        return latency, round_trip
    finally:
        for task in followers:
            task.cancel()
        await producer.stop()
        await owner_changed.stop()
        await touchpoints.stop()


def measure_throughput(bootstrap: str, worker: WorkerProcess, burst: Path) -> float:
    """The worker's events/s while ``spoc publish`` floods it with the burst file."""
    start = sum(partition_ends(bootstrap, TOUCHPOINTS).values())
    publisher = subprocess.Popen(
        [sys.executable, "-m", "spoc", "publish", str(burst), "--bootstrap", bootstrap],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )
    first: tuple[float, int] | None = None
    while first is None:
        processed = sum(worker.positions().values())
        if processed > start:
            first = (time.perf_counter(), processed)
        time.sleep(0.05)
    if publisher.wait() != 0:
        raise RuntimeError("spoc publish failed")
    wait_until_processed(partition_ends(bootstrap, TOUCHPOINTS), [worker], timeout=600)
    last = (time.perf_counter(), sum(worker.positions().values()))
    return (last[1] - first[1]) / (last[0] - first[0])


async def ceiling(bootstrap: str) -> float:
    """A plain consumer with orjson over the whole input topic: what reading alone costs."""
    consumer = reader(bootstrap)
    await consumer.start()
    try:
        ends = await assign_topic(consumer, bootstrap, TOUCHPOINTS)
        await consumer.seek_to_beginning(*ends)
        started, count = time.perf_counter(), 0
        while [tp for tp in ends if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500, max_records=50_000)).values():
                for record in records:
                    with contextlib.suppress(orjson.JSONDecodeError):
                        orjson.loads(record.value)
                    count += 1
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def one_run(args: argparse.Namespace, burst: Path, tmp: Path, run: int) -> RunResult:
    with EmbeddedBroker(free_port()) as broker:
        bootstrap = broker.bootstrap
        asyncio.run(ensure_topics(bootstrap, ALL_TOPICS, PARTITIONS))
        worker = WorkerProcess(
            bootstrap, f"sqlite:///{tmp}/ledger{run}.sqlite", tmp / "worker.log", f"bench-{uuid.uuid4().hex[:8]}",
        )
        try:
            latency, round_trip = asyncio.run(measure_latency(bootstrap, args.rate, args.seconds))
            rate = measure_throughput(bootstrap, worker, burst)
            rss = memory_mib(worker.process.pid, "VmHWM")
        finally:
            worker.close()
        return RunResult(latency, round_trip, rate, asyncio.run(ceiling(bootstrap)), rss)


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200, help="events/s of the latency phase (default: 200)")
    parser.add_argument("--seconds", type=float, default=20, help="length of the latency phase (default: 20)")
    parser.add_argument("--burst", type=int, default=200_000, help="touchpoints of the throughput phase")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        burst = tmp / "burst.jsonl"
        burst.write_bytes(b"\n".join(generate(args.burst, customers=args.burst // 10, seed=7, dirty=0.001)) + b"\n")
        results = []
        for run in range(args.runs):
            result = one_run(args, burst, tmp, run)
            results.append(result)
            print(
                f"run {run + 1}: latency p50 {percentile(result.latency_ms, 50):.1f} ms, "
                f"p99 {percentile(result.latency_ms, 99):.1f} ms; worker {result.worker_rate:,.0f} events/s; "
                f"ceiling {result.ceiling_rate:,.0f} events/s",
                flush=True,
            )

    def median(figure: object) -> float:
        return statistics.median(figure(r) for r in results)  # type: ignore[operator]

    p50, p99 = median(lambda r: percentile(r.latency_ms, 50)), median(lambda r: percentile(r.latency_ms, 99))
    b50, b99 = median(lambda r: percentile(r.round_trip_ms, 50)), median(lambda r: percentile(r.round_trip_ms, 99))
    rate, top = median(lambda r: r.worker_rate), median(lambda r: r.ceiling_rate)
    print()
    print(f"medians of {args.runs} runs; latency at {args.rate:g} events/s for {args.seconds:g} s, burst of {args.burst:,}")
    print(f"{'measure':<58}{'median':>12}{'baseline':>12}{'ratio':>8}")
    print(f"{'latency p50: touchpoint -> owner-changed (ms)':<58}{p50:>12.1f}{b50:>12.1f}{p50 / b50:>8.1f}")
    print(f"{'latency p99: touchpoint -> owner-changed (ms)':<58}{p99:>12.1f}{b99:>12.1f}{p99 / b99:>8.1f}")
    print(f"{'one worker, sustained (events/s)':<58}{rate:>12,.0f}{top:>12,.0f}{rate / top:>8.3f}")
    print(f"{'worker peak RSS (MiB)':<58}{median(lambda r: r.worker_peak_rss_mb):>12,.0f}")
    print("baselines: latency = broker round trip to a plain consumer; throughput = plain aiokafka + orjson read")
    print(f"targets: p99 < 50 ms ({'met' if p99 < 50 else 'NOT met'}), >= 5,000 events/s ({'met' if rate >= 5000 else 'NOT met'})")


if __name__ == "__main__":
    main()
