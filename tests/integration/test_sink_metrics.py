"""`spoc project` as operators run it: started before the worker made its topic, it waits; its /metrics
count what it wrote, its lag reaches zero, and the series follow Prometheus' conventions."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import orjson

from processors.kafka.reading import history
from processors.kafka.topics import ALL_TOPICS, FACTS, TOUCHPOINTS, ensure_topics
from processors.live.engine import LiveLedger, LiveSettings
from processors.live.metrics import WorkerMetrics
from processors.publish import publish
from spoc.worker_process import free_port
from tests.integration.test_live import _workload
from tests.live import read_records, sink_progress, wait_until
from tests.replaying import rows


def _scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def _value(body: str, series: str) -> float:
    found = re.search(rf"^{re.escape(series)} (\S+)$", body, re.M)
    return float(found.group(1)) if found else -1.0


def test_a_sink_waits_for_its_topic_then_reports_what_it_wrote(tmp_path: Path, pipeline_bootstrap: str) -> None:
    port, db, log = free_port(), tmp_path / "live.duckdb", tmp_path / "sink.log"
    sink = subprocess.Popen(
        [sys.executable, "-m", "spoc", "project", "--bootstrap", pipeline_bootstrap, "--db", str(db),
         "--snapshot-every", "0.2", "--metrics-port", str(port), "--ledger", f"sqlite:///{tmp_path}/ledger.sqlite"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: b"waiting for the worker to create its topic" in log.read_bytes(), "the sink waits", 60,
                   lambda: log.read_text())
        assert sink.poll() is None
        source = _workload(tmp_path, 2_000, seed=3)

        async def run_worker() -> None:
            await ensure_topics(pipeline_bootstrap, ALL_TOPICS, 2)
            await publish([str(source)], pipeline_bootstrap, TOUCHPOINTS)
            engine = LiveLedger(LiveSettings(pipeline_bootstrap, f"sqlite:///{tmp_path}/ledger.sqlite"), WorkerMetrics(),
                                lambda *_: None)
            await engine.start()
            try:
                for partition in (0, 1):
                    async for chunk in history(pipeline_bootstrap, TOUCHPOINTS, partition, 10**6):
                        await engine.handle(partition, chunk)
            finally:
                await engine.stop()

        asyncio.run(run_worker())
        records = read_records(pipeline_bootstrap, FACTS)
        facts, inputs = len(records), sum(len(orjson.loads(r.value)) for r in records)
        assert 0 < facts < inputs
        wait_until(lambda: sink_progress(db) == facts, "the sink published every facts message", 120, lambda: log.read_text())
        written = 'spoc_sink_input_messages_total{topic="spoc.facts"}'
        wait_until(lambda: _value(_scrape(port), written) == inputs and all(
            _value(_scrape(port), f'spoc_sink_lag{{partition="{p}",topic="spoc.facts"}}') == 0 for p in (0, 1)),
            "the metrics count every message and no lag", 60, lambda: _scrape(port))
        body = _scrape(port)
        assert re.search(r'^spoc_build_info\{component="sink",python="3\.\d+\.\d+",version="[^"]+"\} 1\.0$', body, re.M)
        assert _value(body, "spoc_sink_snapshots_published_total") >= 1
        assert _value(body, "spoc_sink_snapshot_published_timestamp_seconds") > 1.7e9
        assert "_created" not in body
        assert rows(db, "SELECT count(*) FROM touchpoints")[0][0] > 1000
    finally:
        sink.send_signal(signal.SIGTERM)
        assert sink.wait(60) == 0, log.read_text()
