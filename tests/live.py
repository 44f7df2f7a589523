"""Helpers for tests of the live pipeline: real broker, real worker processes, real sink."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import duckdb
import msgspec
import orjson
from aiokafka import ConsumerRecord

from ledger.policy import Policy
from ledger.store import LedgerStore
from processors.kafka.reading import Incoming, assign_topic, incoming, reader
from processors.kafka.routing import routing
from processors.kafka.topics import (
    ALL_TOPICS,
    FACTS,
    FOLLOW_UPS,
    FOLLOW_UPS_DLQ,
    OWNER_CHANGED_DLQ,
    TOUCHPOINTS,
    ensure_topics,
)
from processors.live.partition import PartitionLedger
from processors.project import SinkSettings, decode_facts, open_sealed, run_sink
from processors.publish import publish
from processors.runtime.child_process import die_with_parent
from processors.sources import read_lines
from schemas.facts import InputFactsV1
from spoc.worker_process import WorkerProcess, caught_up, partition_ends, wait_until_processed


def input_ends(bootstrap: str) -> dict[int, int]:
    return partition_ends(bootstrap, TOUCHPOINTS)


def worker(
    bootstrap: str, ledger_url: str, log: Path, group: str, *options: str, env: dict[str, str] | None = None
) -> WorkerProcess:
    return WorkerProcess(bootstrap, ledger_url, log, group, "--max-batch", "500", *options, env=env)


def ledger_positions(ledger: Path) -> dict[int, int]:
    """Each input partition's next offset whose effects the ledger store holds (its tracking positions)."""
    if not ledger.exists():
        return {}
    with closing(sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=30)) as con:
        try:
            rows = con.execute(
                "SELECT application_name, max(notification_id) FROM tracking "
                "WHERE application_name LIKE 'spoc.touchpoints:%' GROUP BY application_name"
            ).fetchall()
        except sqlite3.OperationalError:  # no table yet
            return {}
    return {int(source.rsplit(":", 1)[1]): offset + 1 for source, offset in rows}


def ledger_progress(ledger: Path) -> int:
    """Input messages whose effects the ledger store holds, over every partition."""
    return sum(ledger_positions(ledger).values())


def input_messages(path: Path, partitions: int) -> int:
    """How many messages ``spoc publish`` makes of a file: one a line, one per partition for a broadcast."""
    return sum(partitions if routing(line)[1] else 1 for _, line in read_lines(str(path)))


def wait_for_ledger(bootstrap: str, ledger: Path, workers: list[WorkerProcess], messages: int) -> None:
    """Until the input topic holds all ``messages`` and the ledger store (SQLite ``ledger``) has recorded
    the effects of each partition up to its end: the durable result, not only the workers' metrics."""
    ends: dict[int, int] = {}

    def published() -> bool:
        ends.update(input_ends(bootstrap))
        return sum(ends.values()) >= messages

    wait_until(published, f"the input topic holds the {messages:,} messages published", explain=lambda: f"ends: {ends}")
    wait_until_processed(ends, workers)
    wait_until(
        lambda: caught_up(ledger_positions(ledger), ends), "the ledger store recorded every partition up to its end",
        explain=lambda: f"ends: {ends}, ledger store: {ledger_positions(ledger)}\n" + "\n".join(w.tail() for w in workers),
    )


def sink_progress(db: Path) -> int:
    """Facts messages the published analytics file holds, over every partition (its stored offsets)."""
    try:
        with duckdb.connect(str(db), read_only=True) as con:
            (total,) = con.execute("SELECT coalesce(sum(next_offset), 0) FROM sink_offsets").fetchone() or (0,)
            return int(total)
    except (duckdb.Error, OSError):  # not published yet
        return 0


def wait_until(
    condition: Callable[[], bool], what: str, timeout: float = 120, explain: Callable[[], str] | None = None
) -> None:
    """Poll ``condition`` until it holds; on timeout fail naming ``what``, with ``explain()``'s text
    (say, the workers' log tails) when given."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting until {what}" + (f"\n{explain()}" if explain else ""))
        time.sleep(0.2)


def wait_for_workers(bootstrap: str, workers: list[WorkerProcess]) -> None:
    wait_until_processed(input_ends(bootstrap), workers)


def publish_file(bootstrap: str, path: Path, partitions: int = 3) -> None:
    async def run() -> None:
        await ensure_topics(bootstrap, ALL_TOPICS, partitions)
        await publish([str(path)], bootstrap, TOUCHPOINTS)

    asyncio.run(run())


def slices(path: Path, chunks: int) -> list[bytes]:
    """The file's lines in ``chunks`` consecutive slices (the last may be shorter)."""
    lines = path.read_bytes().splitlines(keepends=True)
    size = -(-len(lines) // chunks)
    return [b"".join(lines[i:i + size]) for i in range(0, len(lines), size)]


def spoc_publish_from_a_pipe(bootstrap: str, *options: str, output: IO[bytes] | int = subprocess.PIPE) -> subprocess.Popen[bytes]:
    """``spoc publish -`` reading a pipe the caller writes, as an upstream system would run it.

    stdout goes to ``output``, stderr too when ``output`` is a file.  SIGINT acts as at a
    terminal even when the tests run in the background (where it is ignored, and inherited)."""

    def child_setup() -> None:
        die_with_parent()
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    return subprocess.Popen(
        [sys.executable, "-m", "spoc", "publish", "-", "--bootstrap", bootstrap, *options],
        stdin=subprocess.PIPE, stdout=output, stderr=subprocess.PIPE if output == subprocess.PIPE else subprocess.STDOUT,
        preexec_fn=child_setup,
    )


def publish_paced(
    bootstrap: str, path: Path, chunks: int, pause: float, partitions: int = 3, hurry: threading.Event | None = None
) -> None:
    """Publish the file in ``chunks`` slices with a pause between them: a stream, not a backlog.

    Once ``hurry`` is set, the rest goes without pauses (a test done with the stream flowing)."""
    parts = []
    for k, content in enumerate(slices(path, chunks)):
        part = path.with_name(f"{path.stem}.part{k:03d}.jsonl")
        part.write_bytes(content)
        parts.append(part)

    async def run() -> None:
        await ensure_topics(bootstrap, ALL_TOPICS, partitions)
        for part in parts:
            await publish([str(part)], bootstrap, TOUCHPOINTS)
            if hurry is None or not hurry.is_set():
                await asyncio.sleep(pause)

    asyncio.run(run())


def project(bootstrap: str, db: Path, ledger_url: str, policy: Policy | None = None) -> int:
    """The sink run until it has written everything there is, reading the customers' keys from ``ledger_url``."""
    settings = SinkSettings(bootstrap, db, policy, stop_when_caught_up=True, ledger_url=ledger_url)
    return asyncio.run(run_sink(settings, asyncio.Event()))


def read_records(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    """Every committed message of a topic, up to its current end, partition after partition."""
    async def run() -> list[ConsumerRecord]:
        consumer = reader(bootstrap)
        await consumer.start()
        try:
            ends = await assign_topic(consumer, bootstrap, topic)
            await consumer.seek_to_beginning(*ends)
            records: list[ConsumerRecord] = []
            for tp in ends:
                while await consumer.position(tp) < ends[tp]:
                    fetched = await consumer.getmany(tp, timeout_ms=1000)
                    records.extend(r for r in fetched.get(tp, ()) if r.offset < ends[tp])
            return records
        finally:
            await consumer.stop()

    return asyncio.run(run())


def expected_follow_up_notices(bootstrap: str, policy: Policy) -> Counter[str]:
    """The ``spoc.follow-ups`` notices each input partition makes, by idempotency key: its messages run once
    through a fresh partition state, with nothing published before (a worker that never crashed)."""
    by_partition: defaultdict[int, list[Incoming]] = defaultdict(list)
    for record in read_records(bootstrap, TOUCHPOINTS):
        by_partition[record.partition].append(incoming(record))
    keys: Counter[str] = Counter()
    for partition, messages in by_partition.items():
        effects = PartitionLedger(TOUCHPOINTS, partition, policy, None, {}).process(messages)
        keys.update(orjson.loads(out.value)["idempotency_key"] for out in effects.outgoing if out.topic == FOLLOW_UPS)
    return keys


def opened_facts(bootstrap: str, ledger_url: str) -> list[tuple[ConsumerRecord, list[InputFactsV1]]]:
    """Every ``spoc.facts`` message with what anyone holding the ledger store's keys reads in it: each input
    message's facts outside the sealed parts, and each sealed part whose key is still stored, opened."""
    records = [(record, decode_facts(record.value)) for record in read_records(bootstrap, FACTS)]
    store = LedgerStore(ledger_url)
    try:
        keys = store.keys_by_id(part.key for _, messages in records for facts in messages for part in facts.sealed)
    finally:
        store.close()
    opened = []
    for record, messages in records:
        readable = [msgspec.structs.replace(facts, sealed=[]) for facts in messages]
        readable.extend(
            open_sealed(part, keys[part.key]) for facts in messages for part in facts.sealed if part.key in keys
        )
        opened.append((record, readable))
    return opened


def read_values(bootstrap: str, topic: str) -> list[bytes]:
    """Every message value of a topic, up to its current end."""
    return [record.value for record in read_records(bootstrap, topic)]


def read_topic(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(value) for value in read_values(bootstrap, topic)]


# The CloudEvents ``type`` of each public topic's events, spelled out here rather than taken from the code.
CLOUDEVENT_TYPES = {
    "spoc.owner-changed": {"OwnerAssigned": "io.spoc-ledger.owner.assigned.v1", "OwnerChanged": "io.spoc-ledger.owner.changed.v1"},
    "spoc.follow-ups": {f"FollowUp{s.title()}": f"io.spoc-ledger.follow-up.{s}.v1" for s in ("due", "done", "dropped")},
    "spoc.handoffs": {"Handoff": "io.spoc-ledger.handoff.v1"},
}


def assert_cloudevent_headers(bootstrap: str, topic: str) -> int:
    """Every message of a public topic carries the CloudEvents Kafka binding's ``ce_*`` headers (binary mode),
    agreeing with its body; returns how many were checked."""
    records = read_records(bootstrap, topic)
    for record in records:
        headers = {name: value.decode() for name, value in record.headers}
        body = orjson.loads(record.value)
        event_type = body["event_type"]
        expected_type = CLOUDEVENT_TYPES[topic][event_type] if topic in CLOUDEVENT_TYPES else (
            f"io.spoc-ledger.relationship.{event_type}.v1")
        event_id = body.get("ledger_event_id") or body["idempotency_key"]
        assert {k: v for k, v in headers.items() if k.startswith("ce_") or k == "content-type"} == {
            "ce_specversion": "1.0", "ce_id": event_id, "ce_source": f"/spoc-ledger/{topic.removeprefix('spoc.')}",
            "ce_type": expected_type, "ce_subject": body["customer_id"], "ce_time": headers["ce_time"],
            "content-type": "application/json",
        }, record
        assert datetime.fromisoformat(headers["ce_time"]) == datetime.fromisoformat(body["occurred_at"])
    return len(records)


@contextmanager
def running(workers: list[WorkerProcess]) -> Iterator[list[WorkerProcess]]:
    try:
        yield workers
    finally:
        for worker in workers:
            worker.close()


def topic_names(bootstrap: str) -> list[str]:
    """Every topic on the broker but Kafka's own (``__consumer_offsets`` and the like)."""
    from aiokafka.admin import AIOKafkaAdminClient

    async def run() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            return sorted(t for t in await admin.list_topics() if not t.startswith("__"))
        finally:
            await admin.close()

    return asyncio.run(run())


async def delete_pipeline_topics(bootstrap: str) -> None:
    """Clear an external broker of the pipeline's topics (and the workers' changelogs) between tests."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = [
            t for t in await admin.list_topics()
            if t in ALL_TOPICS or t in (OWNER_CHANGED_DLQ, FOLLOW_UPS_DLQ) or t.endswith("-owners-changelog")
        ]
        if existing:
            await admin.delete_topics(existing)
        # Deletion completes in the background: wait until the names are free again.
        for _ in range(120):
            if not set(existing) & set(await admin.list_topics()):
                break
            await asyncio.sleep(0.25)
        await asyncio.sleep(1)
    finally:
        await admin.close()


async def topic_configs(bootstrap: str, topic: str) -> dict[str, str]:
    """The configs the broker reports for a topic."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        [(error_code, _, _, _, entries)] = response.resources
        assert error_code == 0, f"describe_configs({topic}) failed with error code {error_code}"
        return {entry[0]: entry[1] for entry in entries}
    finally:
        await admin.close()
