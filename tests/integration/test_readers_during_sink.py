"""Analysts and the live sink at once: readers of the DuckDB file never block the sink and never
see a half-written state (each snapshot holds exactly the facts up to its stored offsets)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import duckdb

from spoc.worker_process import sink_process
from tests.integration.test_live import _assert_live_equals_replay, _workload
from tests.live import opened_facts, publish_paced, running, wait_for_workers, worker


def touches_per_facts_offset(bootstrap: str, ledger_url: str) -> dict[int, list[tuple[int, int]]]:
    """Per facts partition: (offset, touchpoints in that message, its sealed parts opened), in offset order."""
    found: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for record, readable in opened_facts(bootstrap, ledger_url):
        found[record.partition].append((record.offset, sum(f.touch is not None for f in readable)))
    return found


def read_snapshots(db: Path, seen: list[tuple[int, dict[int, int]]], stop: threading.Event) -> None:
    """Read the file as a new analyst would, again and again until ``stop``: (touchpoints, offsets) each time."""
    while not stop.is_set():
        # A new reader each time (ATTACH: duckdb.connect would reuse a held file's instance).
        with duckdb.connect() as con:
            con.execute(f"ATTACH '{db}' AS snapshot (READ_ONLY); USE snapshot")
            count = con.execute("SELECT count(*) FROM touchpoints").fetchone()[0]
            offsets = dict(con.execute("SELECT partition, next_offset FROM sink_offsets").fetchall())
            con.execute("SELECT count(*) FROM customer_metrics").fetchone()  # the views answer too
        seen.append((count, offsets))
        stop.wait(0.1)


def test_readers_never_block_the_sink_nor_see_half_a_batch(tmp_path: Path, pipeline_bootstrap: str) -> None:
    source = _workload(tmp_path, 20_000, seed=71)
    db = tmp_path / "live.duckdb"
    group = f"spoc-test-{uuid.uuid4().hex[:8]}"
    publisher = threading.Thread(target=publish_paced, args=(pipeline_bootstrap, source, 30, 0.3))
    publisher.start()
    seen: list[tuple[int, dict[int, int]]] = []  # (touchpoints, facts partition -> next offset) per snapshot read
    stop = threading.Event()
    try:
        with running([worker(pipeline_bootstrap, f"sqlite:///{tmp_path}/ledger.sqlite", tmp_path / "worker.log", group)]) as [live]:
            sink = sink_process(pipeline_bootstrap, f"sqlite:///{tmp_path}/ledger.sqlite", db, tmp_path / "sink.log", snapshot_every=0.3)
            try:
                while not db.exists():
                    time.sleep(0.05)
                held = duckdb.connect(str(db), read_only=True)  # an analyst who never closes the file
                held_count = held.execute("SELECT count(*) FROM touchpoints").fetchone()[0]
                readers = threading.Thread(target=read_snapshots, args=(db, seen, stop))
                readers.start()
                try:
                    # Read from the first event published until the sink has written the last one.
                    publisher.join()
                    wait_for_workers(pipeline_bootstrap, [live])
                    per_offset = touches_per_facts_offset(pipeline_bootstrap, f"sqlite:///{tmp_path}/ledger.sqlite")
                    total = sum(n for rows in per_offset.values() for _, n in rows)
                    deadline = time.monotonic() + 120
                    while not seen or seen[-1][0] < total:
                        assert time.monotonic() < deadline, f"the sink wrote {seen[-1:]} of {total} touchpoints in 120 s"
                        time.sleep(0.1)
                finally:
                    stop.set()
                    readers.join()
                # The held connection still reads its snapshot, unchanged, while the sink went on.
                assert held.execute("SELECT count(*) FROM touchpoints").fetchone()[0] == held_count
                held.close()
            finally:
                sink.terminate()
                assert sink.wait(30) == 0
            assert live.terminate() == 0
    finally:
        publisher.join()
    counts = [count for count, _ in seen]
    assert len(set(counts)) >= 5 and counts == sorted(counts), "the snapshots did not move forward while read"
    # Each snapshot holds exactly the touchpoints of the facts before its stored offsets: never half a batch.
    for count, offsets in seen:
        expected = sum(n for p, rows in per_offset.items() for offset, n in rows if offset < offsets.get(p, 0))
        assert count == expected
    _assert_live_equals_replay(tmp_path, pipeline_bootstrap, source)
