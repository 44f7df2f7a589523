"""SPEC §2, "History continues": a replay into a file that holds a history continues it.

`replay day1` then `replay day2` equals `replay day1 day2` in every table and in the
ledger store, late events in day 2 included; an input the file holds already is skipped
whole, whatever its path, compression or stdin; a damaged or foreign state is refused.
"""

from __future__ import annotations

import gzip
import io
import itertools
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.workload import generate
from ledger.errors import TerminalError
from ledger.policy import DEFAULT_POLICY
from ledger.records import LedgerRecord, Position
from processors.batch.history import state_dir
from processors.batch.replay_pass import CHUNK, Flush
from processors.batch.shares import FileShare, ShareResult
from processors.batch.split import _receive
from processors.batch.summary import ReplaySummary
from spoc.cli import main
from tests.event_streams import streams
from tests.replaying import run_replay, write_jsonl

TINY_CACHE_MB = 0.001
"""Less than one customer's charge: every customer but the one at hand is kept on disk."""
SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BOOKKEEPING = {"spoc_state"}
"""Names the state files of the history's last run; their bytes are not part of the result."""


def every_table(db: Path) -> dict[str, list[str]]:
    """Every table and view of an analytics file, rows sorted, as text."""
    with duckdb.connect(str(db), read_only=True) as con:
        names = [n for (n,) in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        return {n: sorted(map(repr, con.execute(f"SELECT * FROM {n}").fetchall())) for n in names if n not in BOOKKEEPING}


def ledger_store(db: Path) -> dict[str, list[str]]:
    """Every row of the ledger store beside an analytics file (events and the positions they record)."""
    with sqlite3.connect(db.with_suffix(".ledger.sqlite")) as con:  # where tests.replaying.run_replay puts it
        tables = [n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: sorted(map(repr, con.execute(f"SELECT * FROM {t}").fetchall())) for t in tables}


def _pieces(events: list[dict[str, Any]], cuts: list[int]) -> list[list[dict[str, Any]]]:
    bounds = [0, *sorted(set(cuts)), len(events)]
    return [events[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@SETTINGS
@given(streams(max_events=60), st.data())
def test_replaying_any_split_into_consecutive_pieces_equals_one_replay(events: list[dict[str, Any]], data: st.DataObject) -> None:
    # Late events, erasures, departures and redeliveries across the cut come with the streams.
    redelivered = events + data.draw(st.lists(st.sampled_from(events), max_size=5))
    cuts = data.draw(st.lists(st.integers(1, max(1, len(redelivered) - 1)), max_size=4))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = [write_jsonl(root / f"piece{k}.jsonl", piece) for k, piece in enumerate(_pieces(redelivered, cuts))]
        whole, _ = run_replay(root, files, name="whole")
        for file in files:  # with a cache of one customer: every other waits on disk (SPEC §2, bounded memory)
            pieces, _ = run_replay(root, [file], name="pieces", state_cache_mb=TINY_CACHE_MB)
        assert every_table(pieces) == every_table(whole)
        assert ledger_store(pieces) == ledger_store(whole)


def test_daily_loads_split_over_processes_equal_one_replay(tmp_path: Path) -> None:
    # Late touches (dirty=...) and enough lines for two share processes in each piece.
    lines = list(generate(30_000, customers=1_500, seed=23, dirty=0.05))
    day1, day2 = tmp_path / "day1.jsonl", tmp_path / "day2.jsonl.gz"
    day1.write_bytes(b"\n".join(lines[:18_000]) + b"\n")
    day2.write_bytes(gzip.compress(b"\n".join(lines[18_000:]) + b"\n"))
    whole, _ = run_replay(tmp_path, [day1, day2], name="whole", workers=2)
    run_replay(tmp_path, [day1], name="daily", workers=2, state_cache_mb=TINY_CACHE_MB)
    daily, summary = run_replay(tmp_path, [day2], name="daily", workers=1, state_cache_mb=0.5)  # the history keeps its two shares
    assert summary.accepted > 0 and summary.inputs_held == 0
    assert every_table(daily) == every_table(whole)
    assert ledger_store(daily) == ledger_store(whole)
    assert len(list(state_dir(daily).glob("*.state"))) == 2


def test_a_split_replay_of_an_input_ending_on_a_chunk_boundary_stores_every_decision(tmp_path: Path) -> None:
    # A file of exactly CHUNK lines flushes twice at its last line; both shares' flushes must be stored.
    lines = list(generate(CHUNK, customers=1_000, seed=37))
    source = write_jsonl(tmp_path / "chunk.jsonl", lines)
    split, _ = run_replay(tmp_path, [source], name="split", workers=2)
    alone, _ = run_replay(tmp_path, [source], name="alone", workers=1)
    assert ledger_store(split) == ledger_store(alone)
    assert every_table(split) == every_table(alone)


def test_the_shares_flushes_are_merged_by_their_number_whatever_order_they_arrive_in() -> None:
    # Both shares flush twice at the same offset (a chunk boundary at a file's end); share 0's second
    # flush arrives before share 1's first, as the queue may deliver them.
    def flush(number: int, share: int) -> Flush:
        records = [LedgerRecord(f"c{share}", None, Position("f", 20_000, 10 * number + share))] if number == 0 else []
        return Flush(number, "f", "f@1", 20_000, 20_000 if number == 0 else 0, records, [])

    arrivals: queue.Queue[tuple[Any, ...]] = queue.Queue()
    for message in (("flush", 0, flush(0, 0)), ("flush", 0, flush(1, 0)), ("flush", 1, flush(0, 1)),
                    ("flush", 1, flush(1, 1)), ("done", 0, ShareResult(ReplaySummary(), None)),
                    ("done", 1, ShareResult(ReplaySummary(), None))):
        arrivals.put(message)
    stored: list[Flush] = []

    def store(merged: Flush) -> int:
        stored.append(merged)
        return 0

    shares = [FileShare((), DEFAULT_POLICY, Path("unused"), 1.0, k, 2) for k in range(2)]
    _receive(arrivals, [], shares, store)
    assert [[r.customer_id for r in f.records] for f in stored] == [["c0", "c1"], []]


def test_an_input_held_already_is_skipped_from_any_path_compressed_or_on_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    content = b"\n".join(generate(3_000, customers=200, seed=5, dirty=0.02)) + b"\n"
    day1 = tmp_path / "day1.jsonl"
    day1.write_bytes(content)
    db, first = run_replay(tmp_path, [day1])
    assert first.inputs_held == 0 and first.accepted > 0
    tables, ledger = every_table(db), ledger_store(db)
    states = sorted((path.name, path.stat().st_mtime_ns) for path in state_dir(db).iterdir())

    elsewhere = tmp_path / "copies" / "renamed.jsonl.gz"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(gzip.compress(content))
    _, again = run_replay(tmp_path, [elsewhere, day1])
    assert (again.inputs_held, again.lines, again.ledger_events_written) == (2, 0, 0)

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(content)))
    assert main(["replay", "-", "--db", str(db), "--ledger", f"sqlite:///{tmp_path}/out.ledger.sqlite"]) == 0
    assert "inputs held already, skipped  1" in capsys.readouterr().out
    assert every_table(db) == tables and ledger_store(db) == ledger
    assert not (state_dir(db) / "spool").exists(), "the copy of stdin stays behind"
    # Nothing new: the state is neither restored nor written again.
    assert sorted((path.name, path.stat().st_mtime_ns) for path in state_dir(db).iterdir()) == states


def test_stdin_with_new_content_is_a_new_input_not_positions_already_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = list(generate(2_000, customers=100, seed=9))
    ledger = f"sqlite:///{tmp_path}/stdin.ledger.sqlite"
    db = tmp_path / "stdin.duckdb"
    for part in (lines[:1_000], lines[1_000:]):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\n".join(part) + b"\n")))
        assert main(["replay", "-", "--db", str(db), "--ledger", ledger]) == 0
    files = [write_jsonl(tmp_path / f"p{k}.jsonl", list(part)) for k, part in enumerate((lines[:1_000], lines[1_000:]))]
    whole, _ = run_replay(tmp_path, files, name="whole")
    with duckdb.connect(str(db), read_only=True) as a, duckdb.connect(str(whole), read_only=True) as b:
        query = "SELECT count(*) FROM ledger_events"
        assert a.execute(query).fetchone() == b.execute(query).fetchone()
        query = "SELECT count(*) FROM touchpoints"
        assert a.execute(query).fetchone() == b.execute(query).fetchone()


def test_rebuild_starts_over_and_a_foreign_or_damaged_state_is_refused_naming_the_fix(tmp_path: Path) -> None:
    lines = list(generate(4_000, customers=300, seed=13))
    day1 = write_jsonl(tmp_path / "day1.jsonl", list(lines[:2_000]))
    day2 = write_jsonl(tmp_path / "day2.jsonl", list(lines[2_000:]))
    db, _ = run_replay(tmp_path, [day1])
    rebuilt, _ = run_replay(tmp_path, [day2], rebuild=True)
    alone, _ = run_replay(tmp_path, [day2], name="alone")
    assert every_table(rebuilt)["touchpoints"] == every_table(alone)["touchpoints"]
    assert every_table(rebuilt)["spoc_inputs"] == every_table(alone)["spoc_inputs"]
    assert len(list(state_dir(db).iterdir())) == 1, "the state of the history before the rebuild stays"

    [state] = state_dir(db).glob("*.state")
    damaged = bytearray(state.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    state.write_bytes(bytes(damaged))
    with pytest.raises(TerminalError, match=r"damaged.*--rebuild"):
        run_replay(tmp_path, [day1])

    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE spoc_state SET code = 'other'")
    with pytest.raises(TerminalError, match=r"another version of spoc.*--rebuild"):
        run_replay(tmp_path, [day1])

    old = tmp_path / "old.duckdb"
    with duckdb.connect(str(old)) as con:
        con.execute("CREATE TABLE touchpoints (event_id VARCHAR)")
    with pytest.raises(TerminalError, match=r"no replay history.*--rebuild"):
        run_replay(tmp_path, [day1], name="old")


def test_a_replay_killed_while_writing_its_state_leaves_the_history_it_had(tmp_path: Path) -> None:
    lines = list(generate(60_000, customers=3_000, seed=31, dirty=0.02))
    day1 = write_jsonl(tmp_path / "day1.jsonl", list(lines[:20_000]))
    day2 = write_jsonl(tmp_path / "day2.jsonl", list(lines[20_000:]))
    db, _ = run_replay(tmp_path, [day1], name="killed")
    before = every_table(db)
    directory = state_dir(db)
    replay = subprocess.Popen(
        [sys.executable, "-m", "spoc", "replay", str(day2), "--db", str(db), "--ledger",
         f"sqlite:///{db.with_suffix('.ledger.sqlite')}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not any(p.name.startswith(".writing-") for p in directory.iterdir()):
            assert replay.poll() is None, "the replay ended before it wrote its state"
            assert time.monotonic() < deadline, "the replay never started writing its state"
            time.sleep(0.002)
        os.kill(replay.pid, signal.SIGKILL)
    finally:
        replay.wait()
    assert replay.returncode == -signal.SIGKILL
    # Killed after it had read all of day 2 (its state was being written): the file still holds day 1.
    assert every_table(db) == before
    continued, summary = run_replay(tmp_path, [day2], name="killed")
    assert summary.accepted > 0
    whole, _ = run_replay(tmp_path, [day1, day2], name="whole")
    assert every_table(continued) == every_table(whole)
    assert ledger_store(continued) == ledger_store(whole)
    assert not [p for p in directory.iterdir() if p.name.startswith(".writing-")], "the half-written state stays"
