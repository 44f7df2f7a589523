"""Back-pressure: a burst of touchpoints (1M by default) is on the topic before the worker starts;
one worker and the DuckDB sink absorb it.

Prints, at each tenth of the worker's progress, the backlog still on the topic and the resident
memory of the worker and of the sink, then both peaks.  If either buffered the backlog, its
memory would be highest at the start, when the backlog is; it should instead follow what has been
processed (the per-customer state and the DuckDB file).  The memory's independence from the backlog
is tested at a smaller size in tests/integration/test_backpressure.py.

    python benchmarks/backpressure.py [--events 1000000] [--customers 20000] [--json out/backpressure.json]
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
from processors.kafka.topics import ALL_TOPICS, FACTS, TOUCHPOINTS, ensure_topics  # noqa: E402
from processors.project import published_offsets  # noqa: E402
from spoc.worker_process import (  # noqa: E402
    WorkerProcess,
    caught_up,
    free_port,
    memory_mib,
    partition_ends,
    sink_process,
)

PARTITIONS = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--json", type=Path, help="also write the samples here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="spoc-backpressure-") as tmp_name, EmbeddedBroker(free_port()) as broker:
        tmp, bootstrap = Path(tmp_name), broker.bootstrap
        burst = tmp / "burst.jsonl"
        burst.write_bytes(b"\n".join(generate(args.events, customers=args.customers, seed=7)) + b"\n")
        asyncio.run(ensure_topics(bootstrap, ALL_TOPICS, PARTITIONS))
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "spoc", "publish", str(burst), "--bootstrap", bootstrap],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        print(f"published the burst of {args.events:,} events in {time.perf_counter() - started:.0f} s")
        total = sum(partition_ends(bootstrap, TOUCHPOINTS).values())

        worker = WorkerProcess(bootstrap, f"sqlite:///{tmp}/ledger.sqlite", tmp / "worker.log", f"bench-{uuid.uuid4().hex[:8]}")
        snapshot = tmp / "analytics.duckdb"
        sink = sink_process(bootstrap, f"sqlite:///{tmp}/ledger.sqlite", snapshot, tmp / "sink.log", snapshot_every=5)
        samples: list[dict[str, float]] = []
        try:
            started = time.perf_counter()
            processed = 0
            while processed < total:
                time.sleep(1.0)
                processed = sum(worker.positions().values())
                samples.append({
                    "seconds": time.perf_counter() - started, "processed": processed, "backlog": total - processed,
                    "worker_mib": memory_mib(worker.process.pid), "sink_mib": memory_mib(sink.pid),
                })
            worker_seconds = time.perf_counter() - started
            ends = partition_ends(bootstrap, FACTS)
            while not caught_up(published_offsets(snapshot), ends):
                time.sleep(1.0)
            sink_lag = time.perf_counter() - started - worker_seconds
            peaks = memory_mib(worker.process.pid, "VmHWM"), memory_mib(sink.pid, "VmHWM")
        finally:
            worker.close()
            sink.terminate()
            sink.wait(60)

    print(f"\none worker absorbed {total:,} messages in {worker_seconds:.0f} s ({total / worker_seconds:,.0f} /s); "
          f"the sink had written them {sink_lag:.0f} s later\n")
    print(f"{'processed':>12}{'backlog':>12}{'worker RSS MiB':>17}{'sink RSS MiB':>15}")
    shown = -1
    for sample in samples:
        tenth = int(10 * sample["processed"] / total)
        if tenth > shown:
            shown = tenth
            print(f"{sample['processed']:>12,.0f}{sample['backlog']:>12,.0f}{sample['worker_mib']:>17,.0f}{sample['sink_mib']:>15,.0f}")
    print(f"\npeak RSS: worker {peaks[0]:,.0f} MiB, sink {peaks[1]:,.0f} MiB")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps({
            "events": args.events, "customers": args.customers, "messages": total, "worker_seconds": worker_seconds,
            "sink_lag_seconds": sink_lag, "worker_peak_mib": peaks[0], "sink_peak_mib": peaks[1], "samples": samples,
        }, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
