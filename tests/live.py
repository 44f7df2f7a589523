"""Helpers for tests of the live pipeline: real broker, real worker processes, real sink."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from processors.kafka_reading import high_watermarks, reader
from processors.publish import publish
from processors.sink import SinkSettings, run_sink
from processors.topics import ALL_TOPICS, TOUCHPOINTS, ensure_topics
from tests.conftest import free_port

POSITION = re.compile(r'^spoc_partition_position\{partition="(\d+)"\} ([0-9.e+]+)$', re.M)


class Worker:
    """A ``spoc worker`` process, with its HTTP port."""

    def __init__(self, bootstrap: str, ledger_url: str, log: Path, group: str = "spoc-worker") -> None:
        self.port = free_port()
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "spoc", "worker", "--bootstrap", bootstrap, "--ledger", ledger_url,
             "--web-port", str(self.port), "--max-batch", "500", "--group", group],
            stdout=self.log, stderr=self.log, start_new_session=True,
        )

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def positions(self) -> dict[int, int]:
        try:
            _, body = self.get("/metrics")
        except OSError:
            return {}
        return {int(p): int(float(v)) for p, v in POSITION.findall(body.decode())}

    def metric(self, name: str) -> float:
        _, body = self.get("/metrics")
        return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", body.decode(), re.M))

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def terminate(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def input_ends(bootstrap: str) -> dict[int, int]:
    """The end of each input partition (from a fetch: see ``high_watermarks``)."""
    async def ends() -> dict[int, int]:
        consumer = reader(bootstrap)
        await consumer.start()
        try:
            await consumer.topics()
            tps = [TopicPartition(TOUCHPOINTS, p) for p in consumer.partitions_for_topic(TOUCHPOINTS) or ()]
            consumer.assign(tps)
            return {tp.partition: end for tp, end in (await high_watermarks(consumer, tps)).items()}
        finally:
            await consumer.stop()

    return asyncio.run(ends())


def wait_until_processed(bootstrap: str, workers: list[Worker], timeout: float = 180) -> None:
    """Until every input partition's effects are made up to its end (any worker may hold it)."""
    deadline = time.monotonic() + timeout
    ends = {p: end for p, end in input_ends(bootstrap).items() if end > 0}
    seen: dict[int, int] = {}
    while time.monotonic() < deadline:
        if all(worker.process.poll() is not None for worker in workers):
            raise AssertionError("every worker exited; see the worker logs")
        seen = {}
        for worker in workers:
            if worker.process.poll() is None:
                for partition, position in worker.positions().items():
                    seen[partition] = max(seen.get(partition, 0), position)
        if all(seen.get(p, 0) >= end for p, end in ends.items()):
            return
        time.sleep(0.2)
    raise AssertionError(f"workers did not finish in {timeout} s: positions {seen}, ends {ends}")


def publish_file(bootstrap: str, path: Path, partitions: int = 3) -> None:
    async def run() -> None:
        await ensure_topics(bootstrap, ALL_TOPICS, partitions)
        await publish([str(path)], bootstrap, TOUCHPOINTS)

    asyncio.run(run())


def project(bootstrap: str, db: Path) -> int:
    return asyncio.run(run_sink(SinkSettings(bootstrap, db, stop_when_caught_up=True), asyncio.Event()))


def read_values(bootstrap: str, topic: str) -> list[bytes]:
    """Every message value of a topic, up to its current end."""
    async def run() -> list[bytes]:
        consumer = reader(bootstrap)
        await consumer.start()
        try:
            await consumer.topics()
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            consumer.assign(tps)
            ends = await high_watermarks(consumer, tps)
            await consumer.seek_to_beginning(*tps)
            values: list[bytes] = []
            for tp in tps:
                while await consumer.position(tp) < ends[tp]:
                    fetched = await consumer.getmany(tp, timeout_ms=1000)
                    values.extend(r.value for r in fetched.get(tp, ()) if r.offset < ends[tp])
            return values
        finally:
            await consumer.stop()

    return asyncio.run(run())


def read_topic(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(value) for value in read_values(bootstrap, topic)]


@contextmanager
def running(workers: list[Worker]) -> Iterator[list[Worker]]:
    try:
        yield workers
    finally:
        for worker in workers:
            worker.kill()
            worker.log.close()


async def delete_pipeline_topics(bootstrap: str) -> None:
    """Clear an external broker of the pipeline's topics (and the workers' changelogs) between tests."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = [t for t in await admin.list_topics() if t in ALL_TOPICS or t.endswith("-owners-changelog")]
        if existing:
            await admin.delete_topics(existing)
            await asyncio.sleep(2)
    finally:
        await admin.close()
