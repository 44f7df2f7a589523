"""SPEC §2, live: a worker that restarts or takes a partition over restores its last checkpoint and
reads only the input after it; killed at any moment, checkpoints included, it loses and doubles nothing."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
import uuid
from contextlib import closing
from pathlib import Path

import orjson

from processors.kafka.topics import ALL_TOPICS, ensure_topics
from spoc.worker_process import WorkerProcess
from tests.integration.test_live import _assert_live_equals_replay, _workload
from tests.live import (
    input_ends,
    publish_file,
    publish_paced,
    running,
    slices,
    wait_for_workers,
    wait_until,
    worker,
)

CHECKPOINT = ("--checkpoint-seconds", "0.2", "--state-cache-mb", "0.05")
"""Checkpoints often, and a cache of ~25 customers: most wait on disk, and checkpoints read them from there."""


def _checkpointed(ledger: Path) -> dict[int, int]:
    """The newest checkpoint's last offset of each input partition, as the ledger store holds them."""
    with closing(sqlite3.connect(ledger)) as con:
        rows = con.execute("SELECT source, max(last_offset) FROM spoc_checkpoints GROUP BY source").fetchall()
    return {int(source.rsplit(":", 1)[1]): offset for source, offset in rows}


def _serving(process: WorkerProcess) -> bool:
    try:
        return process.get("/metrics")[0] == 200
    except OSError:
        return False


def _checkpoints_taken(process: WorkerProcess) -> float:
    try:
        return process.metric("spoc_partition_checkpoints_total")
    except OSError:  # not serving yet
        return 0


def _halves(source: Path, tmp_path: Path) -> tuple[Path, Path]:
    lines = source.read_bytes().splitlines(keepends=True)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_bytes(b"".join(lines[: len(lines) // 2]))
    second.write_bytes(b"".join(lines[len(lines) // 2:]))
    return first, second


def test_a_restarted_worker_reads_only_the_input_after_its_checkpoint(tmp_path: Path, pipeline_bootstrap: str) -> None:
    source = _workload(tmp_path, 6_000, seed=61)
    first, second = _halves(source, tmp_path)
    ledger = tmp_path / "ledger.sqlite"
    group = f"spoc-test-{uuid.uuid4().hex[:8]}"
    publish_file(pipeline_bootstrap, first)
    with running([worker(pipeline_bootstrap, f"sqlite:///{ledger}", tmp_path / "worker.log", group, *CHECKPOINT)]) as [one]:
        wait_for_workers(pipeline_bootstrap, [one])
        wait_until(lambda: _checkpoints_taken(one) > 0, "a checkpoint")
        one.kill()  # no checkpoint on the way out: the restart must work from the last one taken
    checkpointed = _checkpointed(ledger)
    assert checkpointed, "no checkpoint was stored"
    publish_file(pipeline_bootstrap, second)
    ends = input_ends(pipeline_bootstrap)
    log = tmp_path / "restarted.log"
    with running([worker(pipeline_bootstrap, f"sqlite:///{ledger}", log, group, *CHECKPOINT)]) as [two]:
        wait_for_workers(pipeline_bootstrap, [two])
        # A partition's position moves while its restore reads; its restore figures come at its end.
        wait_until(lambda: two.metric("spoc_partition_rebuild_seconds_count") == len(ends), "every restore ends")
        read = two.metric("spoc_partition_restore_messages")
        assert two.metric("spoc_state_customers", place="disk") > 0, "the small cache kept customers on disk"
        after_checkpoints = sum(end - (checkpointed.get(p, -1) + 1) for p, end in ends.items())
        # At most the input after each partition's checkpoint (what faust delivers live is not read to restore).
        assert read <= after_checkpoints < sum(ends.values()), (read, after_checkpoints, ends)
        assert two.terminate() == 0
    restores = [orjson.loads(line) for line in log.read_bytes().splitlines() if b"partition state restored" in line]
    # Each partition restored from its newest checkpoint (one never checkpointed before the kill, from its beginning).
    assert {r["partition"]: r["checkpoint"] for r in restores} == {p: checkpointed.get(p) for p in ends}
    _assert_live_equals_replay(tmp_path, pipeline_bootstrap, source)


def test_workers_killed_mid_work_and_a_takeover_restore_from_the_shared_checkpoints(
    tmp_path: Path, pipeline_bootstrap: str
) -> None:
    rng = random.Random(67)
    source = _workload(tmp_path, 12_000, seed=67)
    ledger = tmp_path / "ledger.sqlite"
    group = f"spoc-test-{uuid.uuid4().hex[:8]}"

    def start() -> WorkerProcess:
        return worker(pipeline_bootstrap, f"sqlite:///{ledger}", tmp_path / "worker.log", group, *CHECKPOINT)

    asyncio.run(ensure_topics(pipeline_bootstrap, ALL_TOPICS, 3))
    kills = 0
    *rounds, last = slices(source, 3)
    for k, lines in enumerate(rounds):
        part = tmp_path / f"round{k}.jsonl"
        part.write_bytes(lines)
        with running([start()]) as [busy]:
            # The stream flows while the worker runs; the kill lands after this worker's first checkpoint,
            # at a seeded moment, and counts when the stream was still flowing then.
            wait_until(lambda: _serving(busy), "the worker serves")
            publisher = threading.Thread(target=publish_paced, args=(pipeline_bootstrap, part, 20, 0.5))
            publisher.start()
            try:
                wait_until(lambda: _checkpoints_taken(busy) >= 1, "a checkpoint")
                time.sleep(rng.uniform(0.0, 0.4))
                flowing = publisher.is_alive()
                busy.kill()
            finally:
                publisher.join()
            kills += flowing
    assert kills >= 1, "no kill landed while the stream flowed"
    part = tmp_path / "last.jsonl"
    part.write_bytes(last)
    publish_file(pipeline_bootstrap, part)
    ends = input_ends(pipeline_bootstrap)
    with running([start(), start()]) as [a, b]:
        wait_for_workers(pipeline_bootstrap, [a, b])
        wait_until(lambda: bool(a.positions()) and bool(b.positions()), "both workers hold partitions")
        orphaned = set(a.positions())
        checkpointed = _checkpointed(ledger)
        a.kill()
        wait_until(lambda: orphaned <= set(b.positions()), "the survivor takes the partitions over")
        wait_for_workers(pipeline_bootstrap, [b])
        # The takeover read the input after the partitions' checkpoints, not their whole history.
        assert b.metric("spoc_partition_restore_messages") <= sum(
            ends[p] - (checkpointed.get(p, -1) + 1) for p in ends
        )
        assert b.terminate() == 0
    _assert_live_equals_replay(tmp_path, pipeline_bootstrap, source)
