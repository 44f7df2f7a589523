"""A file replay makes no reference cycles, so it may freeze each chunk's survivors without collecting them.

``ReplayPass.run_file`` settles with ``collect=False`` after its first chunk: a cycle
made in a later chunk would be frozen and stay in memory until the process ends.
This test makes every kind of input go through a replay into real DuckDB and SQLite
files, in few chunks and in many, and compares the cyclic garbage left behind.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks.workload import generate
from processors.batch import replay_pass
from tests.replaying import run_replay, write_jsonl


def every_kind_of_input() -> list[dict[str, Any] | bytes]:
    """Touchpoints, controls, duplicates and malformed lines, plus erasures, reused ids and late events."""
    generated = list(generate(6_000, 150, seed=11, dirty=0.02))
    lines: list[dict[str, Any] | bytes] = list(generated)
    for k, customer in enumerate(("cust-0000003", "cust-0000042", "cust-0000077")):
        lines.insert(1_000 + 1_500 * k, {
            "type": "customer_erased", "event_id": f"erase-{k}", "occurred_at": "2024-06-01T00:00:00Z",
            "customer_id": customer,
        })
    lines.insert(2_500, {**orjson.loads(generated[10]), "customer_id": "someone-else"})
    lines.insert(4_000, {**orjson.loads(generated[20]), "event_id": "late-1", "occurred_at": "2023-12-01T00:00:00Z"})
    return lines


def cyclic_garbage_left(tmp_path: Path, source: Path, chunk: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many objects in reference cycles a replay with ``chunk``-line chunks leaves behind, frozen."""
    monkeypatch.setattr(replay_pass, "CHUNK", chunk)
    gc.unfreeze()
    gc.collect()
    _, summary = run_replay(tmp_path, [source], name=f"chunk-{chunk}", workers=1)
    assert summary.customers_erased == 3 and summary.duplicates and summary.rejected["event_id_conflict"] == 1
    gc.unfreeze()
    return gc.collect()


def test_the_chunks_of_a_file_replay_leave_no_cyclic_garbage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What is left does not depend on the number of chunks: a few objects of the stores, which die when they close."""
    source = write_jsonl(tmp_path / "input.jsonl", every_kind_of_input())
    run_replay(tmp_path, [source], name="warm", workers=1)  # first use makes a few cycles once (imports, caches)
    few_chunks = cyclic_garbage_left(tmp_path, source, 3_000, monkeypatch)
    many_chunks = cyclic_garbage_left(tmp_path, source, 100, monkeypatch)
    assert many_chunks == few_chunks
