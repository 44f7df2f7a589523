"""The worker's ``/readyz`` judgement, without a worker."""

from __future__ import annotations

from processors.live.readiness import readiness

ENDS = {0: 500, 1: 80, 2: None}


def test_ready_once_joined_with_every_held_partition_restored_and_caught_up() -> None:
    answer = readiness(True, False, {0, 1}, {0: 450, 1: 80}, ENDS.get, max_lag=100)
    assert answer.ready and answer.reasons == () and answer.lag == {0: 50, 1: 0}
    assert answer.as_json() == {"ready": True, "reasons": [], "lag": {"0": 50, "1": 0}}


def test_a_worker_that_holds_nothing_stands_by_ready_but_not_before_it_joined() -> None:
    assert readiness(True, False, set(), {}, ENDS.get, max_lag=100).ready
    assert readiness(False, False, set(), {}, ENDS.get, max_lag=100).reasons == (
        "the worker has not joined its consumer group yet",
    )


def test_each_reason_to_wait_is_named() -> None:
    answer = readiness(True, True, {0, 1, 2, 3}, {0: 399, 2: 7}, ENDS.get, max_lag=100)
    assert not answer.ready
    assert answer.reasons == (
        "a rebalance or the owners table's recovery is in progress",
        "partition 0 is 101 messages behind (more than 100)",
        "partition 1 is being restored",
        "partition 2: its end is not known yet",
        "partition 3 is being restored",
    )
    assert answer.lag == {0: 101, 1: None, 2: None, 3: None}
