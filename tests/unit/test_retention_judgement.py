"""Judging the input topic's retention against what restores need (processors/kafka/retention.py)."""

from __future__ import annotations

import pytest

from processors.kafka.retention import InputRetentionError, PartitionInput, Retention, judge

TOPIC = "spoc.touchpoints"
FOREVER = Retention(-1, -1)
WEEK = Retention(604_800_000, -1)


def test_a_topic_kept_for_good_that_holds_everything_needed_passes_silently() -> None:
    assert judge(TOPIC, FOREVER, [PartitionInput(0, 0, 0, 500, None), PartitionInput(1, 300, 0, 400, None)]) == []


def test_a_broker_that_reports_no_configs_is_judged_by_what_it_holds() -> None:
    assert judge(TOPIC, Retention(None, None), [PartitionInput(0, 0, 0, 10, None)]) == []
    with pytest.raises(InputRetentionError, match="begins at offset 4"):
        judge(TOPIC, Retention(None, None), [PartitionInput(0, 0, 4, 10, None)])


def test_deleted_input_a_rebuild_needs_is_refused_naming_the_fix() -> None:
    with pytest.raises(InputRetentionError) as refused:
        judge(TOPIC, WEEK, [PartitionInput(0, 0, 0, 10, 0), PartitionInput(2, 0, 5_000, 9_000, 5_000)])
    message = str(refused.value)
    assert "partition 2 of spoc.touchpoints begins at offset 5000" in message and "no checkpoint" in message
    assert "deleted 5,000 messages (retention.ms=604800000, retention.bytes=-1)" in message
    assert "retention.ms=-1,retention.bytes=-1" in message and "new --group" in message
    assert "partition 0" not in message


def test_input_after_a_checkpoint_that_is_still_there_is_enough() -> None:
    # Offsets before the checkpoint were deleted: the restore does not read them.
    warnings = judge(TOPIC, WEEK, [PartitionInput(0, 5_000, 4_000, 9_000, 4_500)])
    assert len(warnings) == 1 and "limited time" in warnings[0] and "retention.ms=-1" in warnings[0]


def test_needed_input_older_than_the_retention_is_refused_before_the_broker_deletes_it() -> None:
    with pytest.raises(InputRetentionError, match=r"offsets 100–199 are older than retention.ms=604800000"):
        judge(TOPIC, WEEK, [PartitionInput(1, 100, 0, 900, 200)])


def test_a_partition_read_to_its_end_needs_nothing() -> None:
    assert judge(TOPIC, WEEK, [PartitionInput(0, 900, 900, 900, 900)]) == [judge(TOPIC, WEEK, [])[0]]
