"""SPOC Ledger beside the machine's ceiling and a Quix Streams peer, in one run (issue #6).

    python benchmarks/compare.py                         # 1M touchpoints, 3 runs, analytics at 1M and 10M
    python benchmarks/compare.py --events 200000 --runs 3 --analytics-events 1000000

Every run starts a fresh embedded broker, publishes the same generated workload to
`spoc.touchpoints`, and measures on that topic and file:

- the ceiling: orjson parsing the file's lines alone, and a plain aiokafka consumer with
  orjson reading the topic;
- the peer: SPEC §3-§4 owner and handoff logic as a Quix Streams app (benchmarks/peers/quix_owner.py,
  stateful, changelog on), from the first to the last message it processed;
- ours: `spoc replay` from the file and from the topic (its defaults: a process per core for the file, per
  partition for the topic), the live worker working the topic off
  (from the topic; timed from its process start, as replay is), the DuckDB sink
  (`spoc project --until-caught-up`) on the worker's facts, and touchpoint -> owner-changed
  latency at steady rates, each with peak RSS.

Figures are medians of the runs, with ratios to the ceiling and to the peer of the same runs.
Then every SPEC §7 view is materialised in full (CREATE TEMP TABLE AS SELECT *) on replays of
--analytics-events touchpoints: median of 3 executions each.  Writes a table and --json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from benchmarks.live import ceiling, measure_latency, percentile  # noqa: E402
from benchmarks.replay import TOPIC, replay_once, write_workload  # noqa: E402
from processors.kafka.embedded_broker import EmbeddedBroker  # noqa: E402
from processors.kafka.topics import ALL_TOPICS, TOUCHPOINTS, ensure_topics  # noqa: E402
from projections.reading import read_analytics  # noqa: E402
from spoc.worker_process import WorkerProcess, free_port, memory_mib, partition_ends  # noqa: E402

PARTITIONS = 3
VIEWS = ("owner_history", "customer_owner", "journeys", "handoffs", "repeat_contacts", "customer_metrics",
         "churn_by_continuity", "churn_by_handoffs", "silo_paths", "owner_load")
Figures = dict[str, float]


def orjson_parse(path: Path) -> float:
    """Lines/s of orjson parsing the file, read from the page cache: the floor of any JSON consumer."""
    lines = path.read_bytes().splitlines()
    started = time.perf_counter()
    for line in lines:
        with contextlib.suppress(orjson.JSONDecodeError):
            orjson.loads(line)
    return len(lines) / (time.perf_counter() - started)


def peer(bootstrap: str, tmp: Path) -> Figures:
    group = f"peer-{uuid.uuid4().hex[:8]}"
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.peers.quix_owner", bootstrap, TOUCHPOINTS, group, str(tmp / group), "5"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return {"peer_events_per_s": result["events_per_s"], "peer_peak_rss_mb": result["peak_rss_mb"],
            "peer_owner_changes": result["owner_changes"], "peer_handoffs": result["handoffs"]}


def worker_from_topic(bootstrap: str, tmp: Path, rates: list[float], seconds: float) -> Figures:
    """The live worker started on the whole topic: events/s from its process start until it has done the
    topic (its positions move a rebuild chunk at a time, so a first position seen is no start mark); then
    latency at steady rates, and the sink on everything the worker wrote."""
    total = sum(partition_ends(bootstrap, TOUCHPOINTS).values())
    started = time.perf_counter()
    worker = WorkerProcess(bootstrap, f"sqlite:///{tmp}/live.sqlite", tmp / "worker.log", f"bench-{uuid.uuid4().hex[:8]}")
    figures: Figures = {}
    try:
        while sum(worker.positions().values()) < total:
            time.sleep(0.05)
        figures["worker_events_per_s"] = total / (time.perf_counter() - started)
        figures["worker_peak_rss_mb"] = memory_mib(worker.process.pid, "VmHWM")
        for rate in rates:
            latency, round_trip = asyncio.run(measure_latency(bootstrap, rate, seconds))
            figures[f"latency_p50_ms@{rate:g}"] = percentile(latency, 50)
            figures[f"latency_p99_ms@{rate:g}"] = percentile(latency, 99)
            figures[f"broker_round_trip_p99_ms@{rate:g}"] = percentile(round_trip, 99)
    finally:
        worker.close()
    figures.update(sink(bootstrap, tmp, total))
    return figures


SINK_CHILD = """
import os, sys
from spoc.cli import main
from spoc.worker_process import memory_mib
code = main(["project", "--bootstrap", sys.argv[1], "--db", sys.argv[2], "--ledger", sys.argv[3], "--until-caught-up"])
print(memory_mib(os.getpid(), "VmHWM"))
sys.exit(code)
"""
"""`spoc project` reporting its own peak RSS as it exits (a parent cannot read it after the exit)."""


def sink(bootstrap: str, tmp: Path, messages: int) -> Figures:
    """`spoc project --until-caught-up` on all the facts: input messages covered per second."""
    started = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-c", SINK_CHILD, bootstrap, str(tmp / "live.duckdb"), f"sqlite:///{tmp}/live.sqlite"],
        capture_output=True, text=True,
        check=True, cwd=ROOT,
    )
    seconds = time.perf_counter() - started
    return {"sink_events_per_s": messages / seconds, "sink_peak_rss_mb": float(process.stdout.split()[-1])}


def one_run(workload: Path, tmp: Path, run: int, args: argparse.Namespace) -> Figures:
    figures: Figures = {"orjson_parse_per_s": orjson_parse(workload)}
    replayed = replay_once(workload, tmp, f"replay{run}", "0")
    figures["replay_file_events_per_s"] = replayed["lines"] / replayed["seconds"]
    figures["replay_peak_rss_mb"] = max(replayed["peak_rss_mb"], replayed["worker_peak_rss_mb"])
    with EmbeddedBroker(free_port()) as broker:
        bootstrap = broker.bootstrap
        asyncio.run(ensure_topics(bootstrap, ALL_TOPICS, PARTITIONS))
        subprocess.run([sys.executable, "-m", "spoc", "publish", str(workload), "--bootstrap", bootstrap],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        figures["aiokafka_orjson_read_per_s"] = asyncio.run(ceiling(bootstrap))
        from_topic = replay_once(f"{TOPIC}{bootstrap}", tmp, f"topic{run}", "0")
        figures["replay_topic_events_per_s"] = from_topic["lines"] / from_topic["seconds"]
        figures["replay_topic_peak_rss_mb"] = max(from_topic["peak_rss_mb"], from_topic["worker_peak_rss_mb"])
        figures.update(peer(bootstrap, tmp))
        figures.update(worker_from_topic(bootstrap, tmp / f"live{run}", args.rates, args.latency_seconds))
    return figures


def analytics(events: int, customers: int, tmp: Path) -> dict[str, float]:
    """Seconds to materialise each SPEC §7 view in full, median of 3, on a replay of ``events``."""
    workload = tmp / f"analytics-{events}.jsonl"
    write_workload(workload, events, customers)
    db = tmp / f"analytics-{events}.duckdb"
    subprocess.run([sys.executable, "-m", "spoc", "replay", str(workload), "--db", str(db)],
                   check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    workload.unlink()
    con = read_analytics(db)
    times = {}
    for view in VIEWS:
        samples = []
        for _ in range(3):
            started = time.perf_counter()
            con.execute(f"CREATE OR REPLACE TEMP TABLE materialised AS SELECT * FROM {view}")
            samples.append(time.perf_counter() - started)
        times[view] = statistics.median(samples)
    con.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="touchpoints of the throughput runs")
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rates", type=float, nargs="+", default=[200.0, 1000.0], help="events/s of the latency phases")
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument("--analytics-events", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--json", type=Path, default=ROOT / "out" / "compare.json")
    parser.add_argument("--report", type=Path, metavar="JSON", help="only print the table of a saved run")
    args = parser.parse_args()
    if args.report:
        report(orjson.loads(args.report.read_bytes()))
        return

    with tempfile.TemporaryDirectory(prefix="spoc-compare-") as tmp_name:
        tmp = Path(tmp_name)
        workload = tmp / "workload.jsonl"
        write_workload(workload, args.events, args.customers)
        runs = []
        for run in range(args.runs):
            (tmp / f"live{run}").mkdir()
            runs.append(one_run(workload, tmp, run, args))
            print(f"run {run + 1}: " + ", ".join(f"{k} {v:,.1f}" for k, v in runs[-1].items()), flush=True)
        views = {events: analytics(events, args.customers, tmp) for events in args.analytics_events}

    data = {
        "events": args.events, "customers": args.customers, "runs": runs,
        "medians": {key: statistics.median(run[key] for run in runs) for key in runs[0]},
        "views_seconds": {str(k): v for k, v in views.items()}, "machine": machine(),
    }
    report(data)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    print(f"\nwritten: {args.json}")


def machine() -> dict[str, object]:
    import platform

    import duckdb

    return {"cpus": os.cpu_count(), "python": platform.python_version(), "duckdb": duckdb.__version__,
            "platform": platform.platform()}


def report(data: dict[str, Any]) -> None:
    """Print the table of a run (``data`` as written to --json)."""
    medians: Figures = data["medians"]
    views: dict[str, dict[str, float]] = data["views_seconds"]
    top, quix = medians["aiokafka_orjson_read_per_s"], medians["peer_events_per_s"]
    def rate(key: str) -> str:
        return (
            f"{medians[key]:>14,.0f}{medians[key] / top:>12.3f}{medians[key] / quix:>10.2f}")
    print(f"\n{data['events']:,} touchpoints over {data['customers']:,} customers, medians of {len(data['runs'])} runs")
    print(f"{'events/s':<52}{'median':>14}{'/ ceiling':>12}{'/ peer':>10}")
    rows = [
        ("ceiling: orjson parse alone", "orjson_parse_per_s"),
        ("ceiling: aiokafka + orjson read of the topic", "aiokafka_orjson_read_per_s"),
        ("peer: Quix Streams owner + handoffs (stateful)", "peer_events_per_s"),
        ("ours: spoc replay from the file", "replay_file_events_per_s"),
        ("ours: spoc replay --from-topic", "replay_topic_events_per_s"),
        ("ours: live worker working off the topic", "worker_events_per_s"),
        ("ours: DuckDB sink (spoc project)", "sink_events_per_s"),
    ]
    for label, key in rows:
        print(f"{label:<52}{rate(key)}")
    peer_rss = medians["peer_peak_rss_mb"]
    print(f"\n{'peak RSS (MiB)':<52}{'median':>14}{'':>12}{'/ peer':>10}")
    for label, key in (("peer", "peer_peak_rss_mb"), ("spoc replay (largest process)", "replay_peak_rss_mb"),
                       ("spoc replay --from-topic (largest process)", "replay_topic_peak_rss_mb"),
                       ("live worker", "worker_peak_rss_mb"), ("sink", "sink_peak_rss_mb")):
        print(f"{label:<52}{medians[key]:>14,.0f}{'':>12}{medians[key] / peer_rss:>10.2f}")
    print(f"\n{'latency, touchpoint -> owner-changed (ms)':<52}{'p50':>10}{'p99':>10}{'broker p99':>12}{'p99 / broker':>14}")
    for r in sorted({float(key.split("@")[1]) for key in medians if key.startswith("latency_p50_ms@")}):
        p99, broker = medians[f"latency_p99_ms@{r:g}"], medians[f"broker_round_trip_p99_ms@{r:g}"]
        print(f"{f'at {r:g} events/s':<52}{medians[f'latency_p50_ms@{r:g}']:>10.1f}{p99:>10.1f}{broker:>12.1f}"
              f"{p99 / broker:>14.2f}")
    if views:
        print(f"\n{'SPEC §7 view, seconds to materialise':<52}" + "".join(f"{f'{int(n) / 1e6:g}M':>10}" for n in views))
        for view in VIEWS:
            print(f"{view:<52}" + "".join(f"{views[n][view]:>10.3f}" for n in views))
    replay_ratio = medians["replay_file_events_per_s"] / quix
    slowest = {n: max(v.values()) for n, v in views.items()}
    print(f"\ntargets: replay >= 1.5x peer: {replay_ratio:.2f}x ({'met' if replay_ratio >= 1.5 else 'NOT met'})"
          + "".join(f"; every view < 1 s at {int(n):,}: slowest {s:.2f} s ({'met' if s < 1 else 'NOT met'})"
                    for n, s in slowest.items()))


if __name__ == "__main__":
    main()
