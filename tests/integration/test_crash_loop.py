"""Crashes, repeated, mid-work: workers and the DuckDB sink are SIGKILLed while the stream flows, each
round only after the ledger store's positions and the sink's offsets have moved past a seeded point,
or by the process itself at a named point inside its work (``SPOC_FAILPOINT``: the sink right after
an erasure's commit, inside the publish of written facts; the worker inside a checkpoint).  Every
kill is checked to have landed there.  The end result equals a clean `spoc replay` of the same input."""

from __future__ import annotations

import random
import signal
import threading
import uuid
from pathlib import Path

import orjson

from processors.runtime.failpoints import FAILPOINT_ENV
from spoc.worker_process import WorkerProcess, sink_process
from tests.integration.test_live import _assert_live_equals_replay, _workload
from tests.live import (
    input_messages,
    ledger_progress,
    publish_paced,
    running,
    sink_progress,
    wait_for_ledger,
    wait_until,
    worker,
)

ROUNDS = ("kill", "sink-after-commit", "kill", "worker-checkpointing", "sink-publishing", "kill",
          "sink-after-commit", "worker-checkpointing", "kill", "sink-publishing")
"""Each round's kill: SIGKILL from the test, or a failpoint the process reaches by itself."""


def with_erasures(source: Path, every: int, rng: random.Random) -> int:
    """Insert a `customer_erased` of a customer seen before every ``every`` lines; returns how many."""
    lines = source.read_bytes().splitlines()
    out, seen, erased = [], [], 0
    for k, line in enumerate(lines, 1):
        out.append(line)
        try:
            customer = orjson.loads(line).get("customer_id")
        except orjson.JSONDecodeError:
            continue
        if isinstance(customer, str):
            seen.append(customer)
        if k % every == 0 and seen:
            erased += 1
            out.append(orjson.dumps({"type": "customer_erased", "event_id": f"crash-loop-erase-{erased}",
                                     "occurred_at": "2030-01-01T00:00:00Z", "customer_id": rng.choice(seen)}))
    source.write_bytes(b"\n".join(out) + b"\n")
    return erased


def test_worker_and_sink_killed_mid_work_again_and_again_end_equal_to_replay(tmp_path: Path, pipeline_bootstrap: str) -> None:
    source = _workload(tmp_path, 24_000, seed=61)
    rng = random.Random(17)
    assert with_erasures(source, 600, rng) >= 30
    total = len(source.read_bytes().splitlines())
    ledger_file = tmp_path / "ledger.sqlite"
    ledger = f"sqlite:///{ledger_file}"
    group = f"spoc-test-{uuid.uuid4().hex[:8]}"
    db = tmp_path / "live.duckdb"  # the file _assert_live_equals_replay's sink run finishes
    flowed = threading.Event()  # set: the stream may end at once
    publisher = threading.Thread(
        target=publish_paced, args=(pipeline_bootstrap, source, 400, 0.5), kwargs={"hurry": flowed}
    )
    publisher.start()
    landed: list[str] = []
    try:
        for kind in ROUNDS:
            before_ledger, before_sink = ledger_progress(ledger_file), sink_progress(db)
            checkpointing = kind == "worker-checkpointing"
            options = ("--checkpoint-seconds", "1") if checkpointing else ()
            env = {FAILPOINT_ENV: kind}
            with running([worker(pipeline_bootstrap, ledger, tmp_path / "worker.log", group, *options,
                                 env=env if checkpointing else None)]) as [live]:
                sink = sink_process(pipeline_bootstrap, ledger, db, tmp_path / "sink.log", env=env if kind.startswith("sink") else None)
                try:
                    if kind == "kill":
                        # A seeded point of progress, then the kill.
                        target = min(before_ledger + rng.randint(300, 1500), total)
                        wait_until(lambda: ledger_progress(ledger_file) >= target, f"the ledger past {target}")  # noqa: B023
                        wait_until(lambda: sink_progress(db) > before_sink, "the sink wrote facts")  # noqa: B023
                        if rng.random() < 0.5:
                            live.kill()
                        sink.kill()
                    elif checkpointing:
                        wait_until(lambda: not live.running, "the worker reached its checkpoint failpoint")
                        assert live.process.returncode == -signal.SIGKILL
                        sink.kill()
                    else:
                        wait_until(lambda: sink.poll() is not None, f"the sink reached {kind}")  # noqa: B023
                        assert sink.returncode == -signal.SIGKILL
                finally:
                    sink.kill()
                    sink.wait()
            landed.append(kind)
            assert ledger_progress(ledger_file) > before_ledger or kind.startswith("sink"), f"{kind}: the worker made no progress"
            assert sink_progress(db) > before_sink or kind != "kill", "the sink made no progress before its kill"
            assert publisher.is_alive(), f"the stream ended before round {len(landed)} did"
        flowed.set()
        publisher.join()
        with running([worker(pipeline_bootstrap, ledger, tmp_path / "worker.log", group)]) as [last]:
            wait_for_ledger(pipeline_bootstrap, ledger_file, [last], input_messages(source, 3))
            assert last.terminate() == 0
    finally:
        flowed.set()
        publisher.join()
    assert landed == list(ROUNDS)
    # The last sink run resumes the killed ones' file; tables and topics are compared with replay.
    _assert_live_equals_replay(tmp_path, pipeline_bootstrap, source)


TAKEOVERS = 5


def test_two_workers_one_killed_again_and_again_the_other_takes_over(tmp_path: Path, pipeline_bootstrap: str) -> None:
    """Two workers share the partitions; a seeded loop SIGKILLs one of them while the stream flows,
    each time once it has made a seeded number of messages' effects more.  Each time the survivor
    takes over the dead one's partitions, then the dead one is restarted and gets some back.  The end
    result equals replay."""
    source = _workload(tmp_path, 16_000, seed=71)
    ledger = f"sqlite:///{tmp_path}/ledger.sqlite"
    group = f"spoc-test-{uuid.uuid4().hex[:8]}"
    rng = random.Random(29)
    flowed = threading.Event()  # set: the stream may end at once
    publisher = threading.Thread(
        target=publish_paced, args=(pipeline_bootstrap, source, 300, 0.3, 4), kwargs={"hurry": flowed}
    )
    publisher.start()
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    with running([worker(pipeline_bootstrap, ledger, log, group) for log in logs]) as workers:
        try:
            def tails() -> str:
                return "\n".join(w.tail() for w in workers)

            def both_hold_partitions() -> None:
                wait_until(lambda: all(w.positions() for w in workers), "both workers hold partitions", explain=tails)

            def made(process: WorkerProcess) -> int:
                return sum(process.positions().values())

            for _ in range(TAKEOVERS):
                both_hold_partitions()
                victim = rng.randrange(2)
                dead, survivor = workers[victim], workers[1 - victim]
                # The kill lands once the victim has made a seeded number of messages' effects more.
                target = made(dead) + rng.randint(100, 600)
                wait_until(lambda: made(dead) >= target, "the worker to kill moves on", explain=tails)  # noqa: B023
                orphaned = set(dead.positions())
                assert orphaned, "the worker to kill holds no partition"
                assert publisher.is_alive(), "the stream ended before the kill"
                dead.kill()
                wait_until(
                    lambda: orphaned <= set(survivor.positions()), f"the survivor takes over {orphaned}", explain=tails  # noqa: B023
                )
                workers[victim] = worker(pipeline_bootstrap, ledger, logs[victim], group)
                dead.close()
            flowed.set()
            publisher.join()
            both_hold_partitions()  # the last one restarted is up (SIGTERM while it imports kills it outright)
            wait_for_ledger(pipeline_bootstrap, tmp_path / "ledger.sqlite", workers, input_messages(source, 4))
            for each in workers:
                assert each.terminate() == 0
        finally:
            flowed.set()
            publisher.join()
    _assert_live_equals_replay(tmp_path, pipeline_bootstrap, source)

