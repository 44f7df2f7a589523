"""The worker's HTTP server on a real socket: the project's routes only, the bearer token, the probes, and a
bind beyond loopback only when asked for."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import duckdb
import orjson
import pytest

from spoc.route_lookup import route_at
from tests.integration.test_live import _workload
from tests.live import publish_file, running, wait_for_workers, wait_until, worker
from tests.replaying import run_replay

TOKEN = "s3cret-token-for-the-test"


def test_two_workers_answer_only_their_routes_and_only_with_the_token(
    tmp_path: Path, pipeline_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _workload(tmp_path, 3_000, seed=41)
    publish_file(pipeline_bootstrap, source, partitions=4)
    monkeypatch.setenv("SPOC_HTTP_TOKEN", TOKEN)  # the workers inherit it
    ledger = f"sqlite:///{tmp_path}/ledger.sqlite"
    group = f"spoc-test-{uuid.uuid4().hex[:8]}"
    workers = [worker(pipeline_bootstrap, ledger, tmp_path / f"worker{i}.log", group) for i in range(2)]
    with running(workers):
        wait_for_workers(pipeline_bootstrap, workers)
        deadline = time.monotonic() + 90
        while not all(set(w.positions()) for w in workers):
            assert time.monotonic() < deadline, "a worker got no partition"
            time.sleep(0.5)
        first = workers[0]
        for path in ("/", "/router/", "/table/", "/table/owners/", "/graph/", "/stats/", "/owners/", "/route/", "/metricsx",
                     "/healthzx", "/readyz/x"):
            status, body = first.get(path)
            assert status == 404 and b"this worker serves /owners" in body, path
        assert first.get("/metrics", token="wrong")[0] == 401
        status, body = first.get("/owners/anyone", token="")
        assert status == 401 and b"SPOC_HTTP_TOKEN" in body
        # Every customer from either worker: faust forwards to the partition's holder, the token with it.
        lookup = run_replay(tmp_path, [source], name="lookup")[0]
        with duckdb.connect(str(lookup), read_only=True) as con:
            owners = con.execute("SELECT customer_id, owner_id FROM customer_owner ORDER BY customer_id LIMIT 30").fetchall()
        for customer_id, owner_id in owners:
            status, body = first.get(f"/owners/{customer_id}")
            assert status == 200 and orjson.loads(body)["owner_id"] == owner_id
            # The route (SPEC §9) too, from the partition's holder, equal to `spoc route` over replay's file.
            status, body = first.get(f"/route/{customer_id}")
            batch = route_at(lookup, customer_id, None)
            assert status == 200 and batch is not None
            answer = orjson.loads(body)
            assert list(answer) == ["owner", "owner_available", "candidates", "route_to", "department"]
            assert {**answer, "candidates": [(c["employee_id"], c["score"]) for c in answer["candidates"]]} == {
                **batch[1].as_dict(), "candidates": [(c.employee_id, c.score) for c in batch[1].candidates],
            }
        status, body = first.get("/route/nobody-at-all")
        assert status == 404 and b"no event known" in body
        status, body = first.get("/metrics")
        assert status == 200
        metrics = body.decode()
        assert re.search(r'^spoc_build_info\{component="worker",python="3\.\d+\.\d+",version="[^"]+"\} 1\.0$', metrics, re.M)
        # Each held partition's position (set when it is restored, so present for every partition waited for above).
        assert re.search(r'^spoc_partition_position\{partition="\d+",topic="spoc\.touchpoints"\} ', metrics, re.M)
        assert "_created" not in metrics  # one series per counter and histogram, as Prometheus reads them
        for each in workers:
            assert each.terminate() == 0
    # Their logs: JSON objects only, each with an RFC 3339 time in UTC.
    for i in range(2):
        lines = (tmp_path / f"worker{i}.log").read_bytes().splitlines()
        assert len(lines) > 10
        for line in lines:
            fields = orjson.loads(line)
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", fields["time"]), line


def test_a_bind_beyond_loopback_must_be_asked_for(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "spoc", "worker", "--bootstrap", "127.0.0.1:9", "--web-host", "0.0.0.0"]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert refused.returncode == 2
    assert "--web-public" in refused.stderr and "SPOC_HTTP_TOKEN" in refused.stderr and "Traceback" not in refused.stderr


def test_the_probes_answer_without_the_token_and_ready_follows_the_catch_up(
    tmp_path: Path, pipeline_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``/healthz`` answers while the process serves; ``/readyz`` answers 503 naming why until the worker holds
    its partitions, restored and read to within ``--ready-max-lag`` of their ends, then 200 with each lag."""
    source = _workload(tmp_path, 12_000, seed=43)
    publish_file(pipeline_bootstrap, source, partitions=3)
    monkeypatch.setenv("SPOC_HTTP_TOKEN", TOKEN)
    group = f"spoc-test-{uuid.uuid4().hex[:8]}"
    with running([worker(pipeline_bootstrap, f"sqlite:///{tmp_path}/ledger.sqlite", tmp_path / "worker.log", group,
                         "--ready-max-lag", "50")]) as [only]:
        seen: list[tuple[int, dict[str, object]]] = []

        def ready() -> bool:
            try:
                status, body = only.get("/readyz", token="")
            except OSError:  # not serving yet
                return False
            seen.append((status, orjson.loads(body)))
            return status == 200

        wait_until(ready, "the worker is ready", explain=only.tail)
        assert only.get("/healthz", token="") == (200, b'{"status":"up"}')
        answer = seen[-1][1]
        assert answer["ready"] is True and answer["reasons"] == []
        lags = answer["lag"]
        assert isinstance(lags, dict) and set(lags) == {"0", "1", "2"} and all(n <= 50 for n in lags.values())
        for status, body in seen[:-1]:
            assert status == 503 and body["ready"] is False and body["reasons"]
        wait_for_workers(pipeline_bootstrap, [only])
        assert only.terminate() == 0
