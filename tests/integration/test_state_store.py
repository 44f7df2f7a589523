"""The working state on disk (SPEC §2, bounded memory), on real RocksDB databases: the customers'
spilling mapping behaves as a dict whatever its budget, keeps within the budget, and leaves nothing
on disk when closed; a snapshot carries the customers and the duplicate index's stored ids."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.dedup import Verdict
from ledger.intake import Intake
from ledger.policy import DEFAULT_POLICY
from processors.live.checkpoints import PartitionSnapshot
from processors.runtime import snapshots
from processors.runtime.state_store import (
    NEW_VALUE_BYTES,
    WORKER_SCRATCH_PREFIX,
    CacheBudget,
    SpillingMapping,
    spilling,
    worker_scratch,
)

KEYS = st.sampled_from([f"cust-{n}" for n in range(12)] + ["ünïcode-☎"])
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), KEYS, st.lists(st.integers(), max_size=30)),
        st.tuples(st.just("get"), KEYS, st.none()),
        st.tuples(st.just("append"), KEYS, st.integers()),
        st.tuples(st.just("delete"), KEYS, st.none()),
    ),
    max_size=80,
)


@settings(max_examples=60, deadline=None)
@given(OPERATIONS, st.sampled_from([0.0001, 0.01, 64.0]))
def test_it_behaves_as_a_dict_whatever_its_budget(tmp_path_factory: Any, operations: list[Any], cache_mb: float) -> None:
    expected: dict[str, list[int]] = {}
    with spilling(tmp_path_factory.mktemp("spill"), CacheBudget(cache_mb)) as scratch:
        mapping = scratch.customers
        for operation, key, value in operations:
            if operation == "set":
                mapping[key] = list(value)
                expected[key] = list(value)
            elif operation == "get":
                assert mapping.get(key) == expected.get(key)
            elif operation == "append" and key in expected:
                mapping[key].append(value)  # a value changed in place, as the core changes a customer
                expected[key].append(value)
            elif operation == "delete" and key in expected:
                del mapping[key]
                del expected[key]
            assert len(mapping) == len(expected)
        assert dict(mapping.stored_items()) == expected
        assert sorted(mapping) == sorted(expected)
        assert {k: mapping[k] for k in expected} == expected


def test_a_small_budget_keeps_the_least_recently_used_on_disk_and_closing_deletes_them(tmp_path: Path) -> None:
    budget = CacheBudget(NEW_VALUE_BYTES * 10 / (1 << 20))  # ten new customers
    directory = tmp_path / "customers"
    mapping = SpillingMapping(directory, budget)
    for n in range(60_000):  # some 6 MiB of pickles: written to the database in batches
        mapping[f"c{n}"] = {"touches": [n] * 20}
    assert budget.used <= budget.limit
    assert mapping.evictions == 60_000 - 10
    assert mapping["c0"] == {"touches": [0] * 20} and mapping.loads == 1
    mapping.close()
    assert budget.used == 0 and not directory.exists()


def test_a_snapshot_reads_the_customers_on_disk_and_restores_them_into_another_mapping(tmp_path: Path) -> None:
    ids = [f"event-{n}" for n in range(200_000)]  # enough to fold into the stored ids several times
    with spilling(tmp_path, CacheBudget(0.01)) as scratch:
        intake = Intake(DEFAULT_POLICY, customers=scratch.customers, folded_ids=scratch.ids)
        for n in range(2_000):
            scratch.customers[f"c{n}"] = [n]
        for n, event_id in enumerate(ids):
            assert intake.dedup.check(event_id, n) is Verdict.NEW
        data = snapshots.pack(PartitionSnapshot(intake, 0))
        assert intake.core.customers is scratch.customers and intake.dedup.folded is scratch.ids
    with spilling(tmp_path, CacheBudget(0.01)) as restored_into:
        restored = snapshots.unpack(data, snapshots.sha256(data), restored_into.customers, restored_into.ids)
        assert restored is not None
        assert restored.intake.core.customers is restored_into.customers
        assert dict(restored_into.customers.stored_items()) == {f"c{n}": [n] for n in range(2_000)}
        assert restored_into.customers.evictions > 1_500
        dedup = restored.intake.dedup
        assert dedup.folded is restored_into.ids
        assert [dedup.check(event_id, n) for n, event_id in enumerate(ids)] == [Verdict.DUPLICATE] * len(ids)
        assert dedup.check("event-0", 1) is Verdict.CONFLICT and dedup.check("new", 0) is Verdict.NEW
    unpacked = snapshots.unpack(data, snapshots.sha256(data))  # all in memory
    assert unpacked is not None and unpacked.intake.dedup.check(ids[-1], len(ids) - 1) is Verdict.DUPLICATE


def test_a_customer_deleted_from_disk_leaves_no_bytes_in_the_database_files(tmp_path: Path) -> None:
    # The core deletes an erased customer (SPEC §3 rule 5) this way.  (RocksDB's MANIFEST may still
    # name the id as a file boundary until the scratch directory is deleted; the data goes now.)
    secret, data = "cust-erased", "private-details-4b1d"
    with spilling(tmp_path, CacheBudget(0.01)) as scratch:
        customers = scratch.customers
        customers[secret] = {"notes": data}
        for n in range(20_000):  # the secret is evicted and flushed into the database's files
            customers[f"c{n}"] = {"touches": [n] * 40}
        customers.flush_to_files()
        assert _files_containing(scratch.directory, data.encode()), "the test must see the bytes first"
        del customers[secret]
        assert _files_containing(scratch.directory, data.encode()) == []
        assert secret not in customers


def _files_containing(directory: Path, needle: bytes) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file() and needle in path.read_bytes()]


def test_a_worker_deletes_the_scratch_left_by_workers_no_longer_running(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])  # a worker that has exited: its pid is not running
    dead.wait()
    left = tmp_path / f"{WORKER_SCRATCH_PREFIX}{dead.pid}-abc"
    left.mkdir()
    alive = tmp_path / f"{WORKER_SCRATCH_PREFIX}{os.getpid()}-def"
    alive.mkdir()
    mine = worker_scratch()
    assert not left.exists() and alive.exists() and mine.is_dir() and mine.parent == tmp_path
