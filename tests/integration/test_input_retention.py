"""A worker refuses to start on an input topic that lost, or may lose any moment, the input its restore
needs; and warns about a finite retention otherwise.  Apache Kafka only: the embedded broker neither
reports topic configs nor deletes records."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete

from processors.kafka.topics import TOUCHPOINTS
from tests.hostile_values import VALID
from tests.live import running, wait_until, worker

pytestmark = pytest.mark.skipif(
    not (os.environ.get("SPOC_TEST_BOOTSTRAP") or os.environ.get("SPOC_TEST_BROKER") == "apache"),
    reason="the embedded broker neither reports topic configs nor deletes records; `make test-apache` runs this",
)
HOUR_MS = 3_600_000


async def _input_topic(bootstrap: str, retention_ms: int, messages: int, *, age_ms: int = 0, delete_before: int = 0) -> None:
    """spoc.touchpoints as someone else made it: 2 partitions, this retention, ``messages`` touchpoints
    on partition 0 stamped ``age_ms`` ago, the first ``delete_before`` deleted."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOUCHPOINTS, 2, 1, topic_configs={"retention.ms": str(retention_ms)})])
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        stamp = int(time.time() * 1000) - age_ms
        for k in range(messages):
            event = orjson.dumps({**VALID, "event_id": f"r{k}", "customer_id": "c-1"})
            await producer.send_and_wait(TOUCHPOINTS, event, key=b"c-1", partition=0, timestamp_ms=stamp)
        await producer.stop()
        if delete_before:
            await admin.delete_records({TopicPartition(TOUCHPOINTS, 0): RecordsToDelete(before_offset=delete_before)})
    finally:
        await admin.close()


def _start(bootstrap: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPOC_LEDGER_URL": f"sqlite:///{tmp_path}/ledger.sqlite"}
    command = [sys.executable, "-m", "spoc", "worker", "--bootstrap", bootstrap, "--web-port", "0"]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def test_a_worker_refuses_input_that_was_deleted(tmp_path: Path, pipeline_bootstrap: str) -> None:
    asyncio.run(_input_topic(pipeline_bootstrap, 7 * 24 * HOUR_MS, 30, delete_before=10))
    refused = _start(pipeline_bootstrap, tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert "partition 0 of spoc.touchpoints begins at offset 10" in refused.stderr
    assert "retention.ms=-1,retention.bytes=-1" in refused.stderr and "Traceback" not in refused.stderr


def test_a_worker_refuses_input_older_than_the_retention(tmp_path: Path, pipeline_bootstrap: str) -> None:
    asyncio.run(_input_topic(pipeline_bootstrap, HOUR_MS, 20, age_ms=2 * HOUR_MS))
    refused = _start(pipeline_bootstrap, tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert "offsets 0–19 are older than retention.ms=3600000" in refused.stderr


def test_a_finite_retention_holding_all_the_input_needed_starts_with_a_warning(tmp_path: Path, pipeline_bootstrap: str) -> None:
    asyncio.run(_input_topic(pipeline_bootstrap, 7 * 24 * HOUR_MS, 20))
    log = tmp_path / "worker.log"
    with running([worker(pipeline_bootstrap, f"sqlite:///{tmp_path}/ledger.sqlite", log, f"spoc-test-{uuid.uuid4().hex[:8]}")]) as [live]:
        wait_until(lambda: live.positions().get(0) == 20, "the worker processed partition 0")
        assert live.terminate() == 0
    text = log.read_text()
    assert "warning: spoc.touchpoints keeps input for a limited time (retention.ms=604800000" in text
