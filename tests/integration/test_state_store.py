"""The customers' spilling mapping (SPEC §2, bounded memory) on a real RocksDB database: it behaves
as a dict whatever its budget, keeps within the budget, and leaves nothing on disk when closed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.intake import Intake
from ledger.policy import DEFAULT_POLICY
from processors.live.checkpoints import PartitionSnapshot
from processors.runtime import snapshots
from processors.runtime.state_store import NEW_VALUE_BYTES, CacheBudget, SpillingMapping, spilling

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
    with spilling(tmp_path_factory.mktemp("spill"), CacheBudget(cache_mb)) as mapping:
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
    with spilling(tmp_path, CacheBudget(0.01)) as customers:
        for n in range(2_000):
            customers[f"c{n}"] = [n]
        state = PartitionSnapshot(Intake(DEFAULT_POLICY, customers=customers), 0)
        data = snapshots.pack(state)
        assert state.intake.core.customers is customers and len(customers) == 2_000
    with spilling(tmp_path, CacheBudget(0.01)) as restored_into:
        restored = snapshots.unpack(data, snapshots.sha256(data), restored_into)
        assert restored is not None
        assert restored.intake.core.customers is restored_into
        assert dict(restored_into.stored_items()) == {f"c{n}": [n] for n in range(2_000)}
        assert restored_into.evictions > 1_500
