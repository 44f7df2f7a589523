"""The embedded broker: a real Kafka-protocol process on loopback, started and stopped cleanly."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from processors.kafka.embedded_broker import BrokerError, EmbeddedBroker, port_accepts
from spoc.worker_process import free_port


async def _round_trip(bootstrap: str) -> list[tuple[bytes | None, bytes | None]]:
    topic = f"spoc-test-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for n in range(3):
            await producer.send_and_wait(topic, f"event {n}".encode(), key=b"cust-1")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=f"g-{topic}", enable_auto_commit=False)
    await consumer.start()
    try:
        received: list[tuple[bytes | None, bytes | None]] = []
        while len(received) < 3:
            batch = await consumer.getmany(timeout_ms=5000)
            if not batch:
                break
            received += [(m.key, m.value) for messages in batch.values() for m in messages]
        return received
    finally:
        await consumer.stop()


def test_messages_round_trip_through_the_broker(kafka_bootstrap: str) -> None:
    received = asyncio.run(_round_trip(kafka_bootstrap))
    assert received == [(b"cust-1", b"event 0"), (b"cust-1", b"event 1"), (b"cust-1", b"event 2")]


def test_spoc_broker_serves_until_ctrl_c_and_leaves_nothing_running() -> None:
    port = free_port()
    command = subprocess.Popen(
        [sys.executable, "-m", "spoc", "broker", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert command.stdout is not None
    banner = command.stdout.readline()  # printed only once the broker accepts connections
    assert f"listening on 127.0.0.1:{port}" in banner
    assert asyncio.run(_round_trip(f"127.0.0.1:{port}"))[0] == (b"cust-1", b"event 0")
    command.send_signal(signal.SIGINT)
    assert command.wait(timeout=15) == 0
    assert "broker stopped" in command.stderr.read()  # type: ignore[union-attr]
    assert not port_accepts("127.0.0.1", port)


def test_a_port_in_use_is_a_clear_error() -> None:
    with EmbeddedBroker(free_port()) as running, pytest.raises(BrokerError, match="already in use"):
        EmbeddedBroker(running.port).start()
