"""A broker that goes away and comes back, seen from one aiokafka client: no busy loop, and two
log lines instead of one per attempt.  (The whole pipeline through an outage: test_outage.py.)"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from aiokafka.client import AIOKafkaClient

from processors.kafka import outage as kafka_outage
from processors.kafka.embedded_broker import EmbeddedBroker
from processors.kafka.outage import BrokerReachability
from processors.patches import aiokafka_metadata_backoff
from spoc.worker_process import free_port

WATCH_SECONDS = 2.0


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def failed_updates_while_down(client: AIOKafkaClient) -> int:
    """Wait for metadata and try again at once, as aiokafka's fetcher does while a partition has no leader."""
    failed, deadline = 0, time.monotonic() + WATCH_SECONDS
    while time.monotonic() < deadline:
        if not await client.force_metadata_update():
            failed += 1
    return failed


async def an_outage(port: int, patched: bool) -> int:
    if patched:
        aiokafka_metadata_backoff.install_metadata_backoff()
    with EmbeddedBroker(port) as broker:
        client = AIOKafkaClient(bootstrap_servers=broker.bootstrap, retry_backoff_ms=100)
        await client.bootstrap()
    try:
        failed = await failed_updates_while_down(client)
        with EmbeddedBroker(port):
            # Nobody asks for metadata now: the client finds the broker back by itself.
            deadline = time.monotonic() + 10
            while kafka_outage.REACHABILITY.lost:
                assert time.monotonic() < deadline, "the client did not notice that the broker is back"
                await asyncio.sleep(0.05)
    finally:
        await client.close()
    return failed


def test_a_lost_broker_is_retried_with_backoff_and_logged_once_when_lost_and_once_when_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reachability = BrokerReachability()
    monkeypatch.setattr(kafka_outage, "REACHABILITY", reachability)
    kept = Kept()
    kept.addFilter(reachability)
    aiokafka_log, spoc_log = logging.getLogger("aiokafka"), logging.getLogger("spoc.kafka")
    for logger in (aiokafka_log, spoc_log):
        logger.addHandler(kept)
    monkeypatch.setattr(AIOKafkaClient, "_metadata_update", aiokafka_metadata_backoff._unpatched_metadata_update)
    port = free_port()
    try:
        unpatched = asyncio.run(an_outage(port, patched=False))
        kept.records.clear()
        patched = asyncio.run(an_outage(port, patched=True))
    finally:
        for logger in (aiokafka_log, spoc_log):
            logger.removeHandler(kept)

    # aiokafka alone retries as fast as the refused connections come back: a busy loop.
    assert unpatched > 20 * WATCH_SECONDS / 0.1, unpatched
    # With the backoff, about one attempt per retry_backoff_ms.
    assert patched <= 1.5 * WATCH_SECONDS / 0.1, patched
    said = [record.getMessage() for record in kept.records]
    assert [line.split(" (")[0].split(" after")[0] for line in said] == [
        "Kafka broker unreachable", "Kafka broker reachable again",
    ], said
    assert "bootstrap address" in said[0] and "failed attempts" in said[1]
