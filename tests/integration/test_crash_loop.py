"""Crashes, repeated: workers and the DuckDB sink are SIGKILLed at seeded random points while the
stream flows, and restarted each time; the end result equals a clean `spoc replay` of the same input."""

from __future__ import annotations

import random
import threading
import time
import uuid
from pathlib import Path

from spoc.worker_process import sink_process
from tests.integration.test_live import _assert_live_equals_replay, _workload
from tests.live import publish_paced, running, wait_for_workers, wait_until, worker

KILLS = 10


def test_worker_and_sink_killed_again_and_again_end_equal_to_replay(tmp_path: Path, pipeline_bootstrap: str) -> None:
    source = _workload(tmp_path, 24_000, seed=61)
    ledger = f"sqlite:///{tmp_path}/ledger.sqlite"
    group = f"spoc-test-{uuid.uuid4().hex[:8]}"
    db = tmp_path / "live.duckdb"  # the file _assert_live_equals_replay's sink run finishes
    rng = random.Random(17)
    publisher = threading.Thread(target=publish_paced, args=(pipeline_bootstrap, source, 60, 0.25))
    publisher.start()
    kills = {"worker": 0, "sink": 0, "while publishing": 0}
    try:
        sink = None
        for _ in range(KILLS):
            with running([worker(pipeline_bootstrap, ledger, tmp_path / "worker.log", group)]) as [live]:
                sink = sink_process(pipeline_bootstrap, db, tmp_path / "sink.log")
                time.sleep(rng.uniform(1.0, 4.0))
                if rng.random() < 0.5:
                    live.kill()
                    kills["worker"] += 1
                sink.kill()
                sink.wait()
                kills["sink"] += 1
                kills["while publishing"] += publisher.is_alive()
        assert kills["worker"] > 0 and kills["while publishing"] >= 3, kills
        publisher.join()
        with running([worker(pipeline_bootstrap, ledger, tmp_path / "worker.log", group)]) as [last]:
            wait_for_workers(pipeline_bootstrap, [last])
            assert last.terminate() == 0
    finally:
        publisher.join()
    # The last sink run resumes the killed ones' file; tables and topics are compared with replay.
    _assert_live_equals_replay(tmp_path, pipeline_bootstrap, source)


TAKEOVERS = 5


def test_two_workers_one_killed_again_and_again_the_other_takes_over(tmp_path: Path, pipeline_bootstrap: str) -> None:
    """Two workers share the partitions; a seeded loop SIGKILLs one of them while the stream flows.
    Each time the survivor takes over the dead one's partitions, then the dead one is restarted and
    gets some back.  The end result equals replay."""
    source = _workload(tmp_path, 16_000, seed=71)
    ledger = f"sqlite:///{tmp_path}/ledger.sqlite"
    group = f"spoc-test-{uuid.uuid4().hex[:8]}"
    rng = random.Random(29)
    publisher = threading.Thread(target=publish_paced, args=(pipeline_bootstrap, source, 100, 0.3, 4))
    publisher.start()
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    while_publishing = 0
    with running([worker(pipeline_bootstrap, ledger, log, group) for log in logs]) as workers:
        try:
            def both_hold_partitions() -> None:
                wait_until(lambda: all(w.positions() for w in workers), "both workers hold partitions")

            for _ in range(TAKEOVERS):
                both_hold_partitions()
                time.sleep(rng.uniform(0.5, 2.0))
                victim = rng.randrange(2)
                dead, survivor = workers[victim], workers[1 - victim]
                orphaned = set(dead.positions())
                assert orphaned, "the worker to kill holds no partition"
                dead.kill()
                wait_until(lambda: orphaned <= set(survivor.positions()), f"the survivor takes over {orphaned}")  # noqa: B023
                while_publishing += publisher.is_alive()
                workers[victim] = worker(pipeline_bootstrap, ledger, logs[victim], group)
                dead.close()
            assert while_publishing >= 2, f"only {while_publishing} takeovers while the stream flowed"
            publisher.join()
            both_hold_partitions()  # the last one restarted is up (SIGTERM while it imports kills it outright)
            wait_for_workers(pipeline_bootstrap, workers)
            for each in workers:
                assert each.terminate() == 0
        finally:
            publisher.join()
    _assert_live_equals_replay(tmp_path, pipeline_bootstrap, source)

