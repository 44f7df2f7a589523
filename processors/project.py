"""``spoc project``: the live DuckDB sink.

Consumes ``spoc.facts`` (the rows the worker derived for each input message, in
chunks, one ordered stream per partition) and appends them to a working DuckDB file.  The
next offset of every partition is stored in the same transaction as the rows,
so a restarted sink resumes exactly where its last commit ended: nothing twice,
nothing lost.  So is the last input offset written (each facts message's
``spoc-offset``): a facts message the worker's producer delivered twice (a
retry after a lost acknowledgement) carries no input offset past it, and is
skipped.  Analysts read ``--db PATH``, a snapshot the sink republishes
atomically (copy, then rename) every few seconds while there is news: readers
never block the sink and never see half a batch.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError
from msgspec.structs import astuple
from prometheus_client import Counter, Gauge, Histogram

from ledger.errors import TerminalError
from ledger.keys import unseal
from ledger.policy import Policy
from ledger.store import LEDGER_URL_ENV, LedgerStore
from processors.kafka.marks import FACTS_VERSION_HEADER, KEY_STORE_HEADER, POLICY_HEADER, mark_of
from processors.kafka.reading import readable_end, reader
from processors.kafka.topics import (
    FACTS,
    TopicLayoutError,
    partition_counts,
    unreachable,
    wait_for_topic,
)
from processors.runtime.failpoints import failpoint
from processors.runtime.prometheus import new_registry
from projections.duckdb_store import COPY_SUFFIX, AnalyticsStore, compact, quoted, remove_stale_copies
from schemas.facts import FACTS_VERSION, ROW_STRUCTS, ErasureFactV1, InputFactsV1, SealedFactsV1

log = logging.getLogger("spoc.sink")
LAG_EVERY_SECONDS = 5.0
"""How often the sink asks the broker for the facts partitions' ends (``spoc_sink_lag``)."""

OFFSETS_DDL = (
    "CREATE TABLE IF NOT EXISTS sink_offsets (topic VARCHAR, partition INTEGER, next_offset BIGINT, "
    "PRIMARY KEY (topic, partition))",
    # Added in 0.2: working files of earlier sinks gain it on start (NULL: no message skipped until one is written).
    "ALTER TABLE sink_offsets ADD COLUMN IF NOT EXISTS last_input_offset BIGINT",
    # A compaction owed after an erasure: recorded in the erasure's transaction, cleared once the compacted
    # file is published, so a sink killed in between finishes it when it starts again.
    "CREATE TABLE IF NOT EXISTS sink_compaction_pending (since_offsets VARCHAR)",
)
FETCH_BYTES = 1024 * 1024
"""Facts fetched per transaction at most (a larger message still comes whole): a sink behind a long
backlog holds one such fetch, not the backlog (larger fetches cost memory for little speed:
docs/performance.md)."""
decode_facts = msgspec.json.Decoder(list[InputFactsV1]).decode
_decode_part = msgspec.json.Decoder(InputFactsV1).decode


@dataclass
class SinkSettings:
    bootstrap: str
    db: Path
    policy: Policy | None = None
    """The policy the worker runs with, checked against the one its facts carry.  None: follow the
    worker's (the views fall back to the SPEC's windows until its first facts arrive)."""
    snapshot_every_seconds: float = 2.0
    stop_when_caught_up: bool = False
    """Exit once every partition is read to its end (for batch use and tests)."""
    ledger_url: str | None = None
    """The worker's ledger store, which keeps the customers' keys its facts are sealed with."""
    memory_limit: str = "64MB"
    """DuckDB's memory for the working file.  Unlimited, DuckDB keeps every block the sink wrote and
    compresses a full row group in memory at a checkpoint, so a sink's memory would grow with the
    file; capped, it stays flat for a small cost in speed (docs/performance.md)."""


def _empty_tables() -> dict[str, list[Any]]:
    return {table: [] for table in ROW_STRUCTS}


READABLE_FACTS_VERSIONS = (b"1", b"2", FACTS_VERSION)
"""Version 1 lacks follow-ups: its workers made none.  Version 2 is unsealed: a worker upgraded after it
wrote some seals what it writes next, and the sink reads both."""


def _refuse_another_facts_version(version: bytes) -> None:
    if version not in READABLE_FACTS_VERSIONS:
        raise TerminalError(
            f"a facts message is in version {version.decode(errors='replace')} of the facts format, this sink reads "
            f"version {FACTS_VERSION.decode()}; run `spoc project` from the same version as `spoc worker`"
        )


def sealed_key_ids(messages: list[InputFactsV1]) -> set[str]:
    return {part.key for facts in messages for part in facts.sealed}


def open_sealed(part: SealedFactsV1, key: bytes) -> InputFactsV1:
    """A customer's part of an input message's facts, opened with its key (``ValueError``: not that key's box)."""
    return _decode_part(unseal(part.key, key, part.box))


@dataclass
class FactRows:
    """The rows of one fetch, by table, with the erasures to apply after them."""

    tables: dict[str, list[Any]] = field(default_factory=_empty_tables)
    erasures: list[ErasureFactV1] = field(default_factory=list)
    latest: datetime | None = None
    messages: int = 0
    shredded: int = 0
    """Customer parts whose key is gone: the customer was erased (after them)."""

    def add(self, messages: list[InputFactsV1], keys: Mapping[str, bytes]) -> None:
        """One facts message (the facts of a run of input messages), decoded; ``keys``: the keys of its
        sealed parts that are still stored."""
        self.messages += len(messages)
        for facts in messages:
            self._add_facts(facts)
            for part in facts.sealed:
                key = keys.get(part.key)
                if key is None:
                    self.shredded += 1
                    continue
                try:
                    opened = open_sealed(part, key)
                except ValueError as error:
                    raise TerminalError(f"{error}; give `spoc project` the worker's ledger store (--ledger)") from None
                if opened.rejected is not None:  # the line whole, instead of the blanked row outside
                    self.tables["rejected_events"].pop()
                self._add_facts(opened)
            # Instants compare across offsets (as text, 23:00-05:00 would come before 01:00+00:00).
            if facts.at is not None and (self.latest is None or facts.at > self.latest):
                self.latest = facts.at

    def _add_facts(self, facts: InputFactsV1) -> None:
        tables = self.tables
        for table, row in (
            ("touchpoints", facts.touch), ("handoff_facts", facts.handoff),
            ("repeat_facts", facts.repeat), ("control_events", facts.control),
        ):
            if row is not None:
                tables[table].append(astuple(row))
        tables["ledger_events"].extend(astuple(row) for row in facts.ledger)
        tables["follow_up_facts"].extend(astuple(row) for row in facts.follow_ups)
        rejected = facts.rejected
        if rejected is not None:
            raw = rejected.raw
            tables["rejected_events"].append((
                rejected.reason, rejected.detail, rejected.field, raw, raw.decode("utf-8", "replace"),
                rejected.source, rejected.position, rejected.seq,
            ))
        if facts.erasure is not None:
            self.erasures.append(facts.erasure)


class SinkMetrics:
    """What ``spoc project --metrics-port`` serves."""

    def __init__(self) -> None:
        self.registry = r = new_registry("sink")
        self.messages = Counter(
            "spoc_sink_input_messages", "Input messages whose facts were written to the working file (a facts message "
            "carries many), by the topic the facts came from", ["topic"], registry=r,
        )
        self.redelivered = Counter(
            "spoc_sink_facts_redelivered", "Facts messages skipped as delivered twice (a producer retry)", ["topic"],
            registry=r,
        )
        self.erasures = Counter("spoc_sink_erasures", "Customers erased from the file", registry=r)
        self.shredded = Counter(
            "spoc_sink_shredded_parts", "Customers' sealed facts skipped because their key is gone (the customer "
            "was erased after them: the file would delete them at the erasure)", registry=r,
        )
        self.lag = Gauge(
            "spoc_sink_lag", "Facts messages not yet written, by partition (refreshed every few seconds)",
            ["topic", "partition"], registry=r,
        )
        self.write_seconds = Histogram(
            "spoc_sink_write_seconds", "Time to append one fetch's rows and offsets in one transaction",
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30), registry=r,
        )
        self.snapshots = Counter("spoc_sink_snapshots_published", "Copies of the file published to --db", registry=r)
        self.snapshot_time = Gauge(
            "spoc_sink_snapshot_published_timestamp_seconds", "When the copy analysts read was last published (Unix time)",
            registry=r,
        )


class Sink:
    def __init__(self, settings: SinkSettings, metrics: SinkMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or SinkMetrics()
        self.working = settings.db.with_name(settings.db.name + ".sink")
        self.store = self._open()
        self.policy = settings.policy
        self._worker_policy: bytes | None = None
        self._ledger: LedgerStore | None = None
        self._key_store = b""
        """The policy header of the facts last read: the policy of everything written since."""
        if settings.policy is not None:
            self.store.refuse_another_policy(
                settings.policy, "give `spoc project` the --policy the worker runs with, or another --db", settings.db
            )
        self.store.create_schema(replace=False)
        for statement in OFFSETS_DDL:
            self.store.con.execute(statement)
        for stale in (*remove_stale_copies(self.working), *remove_stale_copies(settings.db)):
            log.info("removed a copy a killed sink left", extra={"path": str(stale)})
        latest = self._setting("latest_event_at")
        self.latest = datetime.fromisoformat(latest) if latest else None
        self.written_up_to = self._written_up_to()
        self.messages = 0
        self.redelivered = 0
        self._dirty = True
        self._published_at = 0.0
        self._copy_seconds = 0.0
        if self._compaction_pending():
            log.info("finishing the compaction a killed sink left pending (an erasure)")
            self._compact()

    def _open(self) -> AnalyticsStore:
        return AnalyticsStore(self.working, self.settings.memory_limit)

    def _setting(self, key: str) -> str | None:
        row = self.store.con.execute("SELECT value FROM spoc_settings WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def offsets(self) -> dict[int, int]:
        rows = self.store.con.execute("SELECT partition, next_offset FROM sink_offsets WHERE topic = ?", [FACTS])
        return dict(rows.fetchall())

    def _written_up_to(self) -> dict[int, int]:
        rows = self.store.con.execute(
            "SELECT partition, last_input_offset FROM sink_offsets WHERE topic = ? AND last_input_offset IS NOT NULL",
            [FACTS],
        )
        return dict(rows.fetchall())

    def write(self, fetched: dict[TopicPartition, list[Any]]) -> int:
        """Append one fetch's rows and the partitions' next offsets in one transaction."""
        with self.metrics.write_seconds.time():
            return self._write(fetched)

    def _write(self, fetched: dict[TopicPartition, list[Any]]) -> int:
        rows = FactRows()
        written_up_to = dict(self.written_up_to)
        redelivered = 0
        fresh: list[list[InputFactsV1]] = []
        key_stores: set[bytes] = set()
        for tp, records in fetched.items():
            for record in records:
                headers = dict(record.headers)
                _refuse_another_facts_version(headers.get(FACTS_VERSION_HEADER, FACTS_VERSION))
                self._follow_policy(headers.get(POLICY_HEADER))
                mark = mark_of(record.headers)  # (the last input offset it carries, 0)
                if mark is not None:
                    if mark[0] <= written_up_to.get(tp.partition, -1):
                        redelivered += 1
                        continue
                    written_up_to[tp.partition] = mark[0]
                fresh.append(decode_facts(record.value))
                key_stores.add(headers.get(KEY_STORE_HEADER, b""))
        keys = self._keys(set[str]().union(*map(sealed_key_ids, fresh)), key_stores)
        for messages in fresh:
            rows.add(messages, keys)
        con = self.store.con
        con.begin()
        try:
            for table, table_rows in rows.tables.items():
                self.store.append(table, table_rows)
            for erasure in rows.erasures:
                # Facts from before erasures named their source: every rejected line naming the customer goes.
                self.store.erase(erasure.customer_id, erasure.source, erasure.seq)
            if rows.erasures:
                con.execute("INSERT INTO sink_compaction_pending VALUES (?)", [str(written_up_to)])
            if rows.latest is not None and (self.latest is None or rows.latest > self.latest):
                self.latest = rows.latest
            self.store.write_settings(self.policy, latest_event_at=self.latest.isoformat() if self.latest else None)
            for tp, records in fetched.items():
                if records:
                    con.execute(
                        "INSERT INTO sink_offsets VALUES (?, ?, ?, ?) ON CONFLICT (topic, partition) "
                        "DO UPDATE SET next_offset = excluded.next_offset, last_input_offset = excluded.last_input_offset",
                        [tp.topic, tp.partition, records[-1].offset + 1, written_up_to.get(tp.partition)],
                    )
            con.commit()
        except BaseException:
            con.rollback()
            raise
        failpoint("sink-after-commit")
        self.written_up_to = written_up_to
        self.metrics.messages.labels(FACTS).inc(rows.messages)
        self.metrics.erasures.inc(len(rows.erasures))
        self.metrics.shredded.inc(rows.shredded)
        if redelivered:
            self.metrics.redelivered.labels(FACTS).inc(redelivered)
            self.redelivered += redelivered
            log.warning("skipped facts delivered twice", extra={"messages": redelivered, "total": self.redelivered})
        self.messages += rows.messages
        self._dirty = self._dirty or rows.messages > 0
        if rows.erasures:
            self._compact()
        return rows.messages

    def _keys(self, key_ids: set[str], key_stores: set[bytes]) -> dict[str, bytes]:
        """The keys of the sealed parts still stored, from the store the facts name (the worker's ledger
        store, opened on first need)."""
        if not key_ids:
            return {}
        fix = f"give `spoc project` the worker's ledger store: --ledger URL or ${LEDGER_URL_ENV}"
        if self._ledger is None:
            if self.settings.ledger_url is None:
                raise TerminalError(f"the worker seals each customer's facts with a key kept in its ledger store; {fix}")
            self._ledger = LedgerStore(self.settings.ledger_url)
            self._key_store = (self._ledger.identity(create=False) or "").encode()
        others = key_stores - {self._key_store}
        if others:
            raise TerminalError(
                f"the facts are sealed with keys in another ledger store (identity {b', '.join(sorted(others)).decode()}) "
                f"than {self._ledger.url} (identity {self._key_store.decode() or 'none, no worker has used it'}); {fix}"
            )
        return self._ledger.keys_by_id(key_ids)

    def _follow_policy(self, encoded: bytes | None) -> None:
        """Take the policy the worker's facts were made under: the views' windows must be the ones its
        repeats were found with.  Refuse a policy other than ``--policy`` or the file's own."""
        if encoded is None or encoded == self._worker_policy:
            return
        try:
            policy = msgspec.json.decode(encoded, type=Policy)
        except msgspec.DecodeError as error:
            raise TerminalError(
                f"a facts message carries a policy this sink cannot read ({error}); run `spoc project` from the "
                "same version as `spoc worker`"
            ) from None
        given = self.settings.policy
        if given is not None and policy != given:
            changes = policy.changes_from(given.as_recorded())
            raise TerminalError(
                f"the worker runs with another policy than `spoc project --policy` gives (--policy → worker: "
                f"{', '.join(changes)}); give both the same file, or leave --policy off and the sink follows the worker"
            )
        self.store.refuse_another_policy(
            policy, "the worker runs with another policy now; project its facts into a new --db (docs/live.md, \"Policy\")",
            self.settings.db,
        )
        self.policy, self._worker_policy = policy, encoded

    def _compaction_pending(self) -> bool:
        row = self.store.con.execute("SELECT count(*) FROM sink_compaction_pending").fetchone()
        return bool(row and row[0])

    def _compact(self) -> None:
        """After an erasure: rewrite the working file, and publish it now, so neither file keeps
        the erased customer's bytes in free blocks; then the compaction is no longer owed."""
        self.store.close()
        compact(self.working, before_replace=lambda: failpoint("sink-compacting"))
        self.store = self._open()
        self._dirty = True
        self.publish(force=True, point="sink-publishing-compacted")
        self.store.con.execute("DELETE FROM sink_compaction_pending")

    def publish(self, force: bool = False, point: str = "sink-publishing") -> bool:
        """Copy the working file to ``--db`` atomically, at most every few seconds (``point``: a crash
        test's kill point, between the copy and its rename)."""
        now = time.monotonic()
        interval = max(self.settings.snapshot_every_seconds, 10 * self._copy_seconds)
        if not self._dirty or (not force and now - self._published_at < interval):
            return False
        started = time.perf_counter()
        self.store.con.execute("CHECKPOINT")
        target = self.settings.db
        staging = target.with_name(f".{target.name}.{os.getpid()}{COPY_SUFFIX}")
        shutil.copyfile(self.working, staging)
        if self.messages:  # a publish of facts this process wrote: mid-work, not start-up
            failpoint(point)
        os.replace(staging, target)
        self.metrics.snapshots.inc()
        self.metrics.snapshot_time.set_to_current_time()
        self._copy_seconds = time.perf_counter() - started
        self._published_at = now
        self._dirty = False
        return True

    def close(self) -> None:
        self.store.close()
        if self._ledger is not None:
            self._ledger.close()


async def run_sink(
    settings: SinkSettings, stopping: asyncio.Event, progress: Callable[[int], None] | None = None,
    metrics: SinkMetrics | None = None,
) -> int:
    """Follow ``spoc.facts`` into the DuckDB file until ``stopping`` is set; returns messages written.

    Started before the worker has created ``spoc.facts``, it waits for the topic (a batch run,
    ``stop_when_caught_up``, refuses instead)."""
    sink = Sink(settings, metrics)
    consumer = reader(settings.bootstrap, fetch_max_bytes=FETCH_BYTES, max_partition_fetch_bytes=FETCH_BYTES)
    try:
        await consumer.start()
    except KafkaConnectionError as error:
        await consumer.stop()  # else asyncio reports an unclosed consumer after the error
        sink.close()
        raise unreachable(settings.bootstrap, error) from None
    try:
        partitions = await _facts_partitions(settings, stopping)
        if not partitions:  # stopped while waiting
            return 0
        tps = [TopicPartition(FACTS, p) for p in partitions]
        consumer.assign(tps)
        stored = sink.offsets()
        for tp in tps:
            if tp.partition in stored:
                consumer.seek(tp, stored[tp.partition])
            else:
                await consumer.seek_to_beginning(tp)
        log.info("sink started", extra={"db": str(settings.db), "partitions": partitions, "resume": stored})
        lag_measured_at = 0.0
        while not stopping.is_set():
            if time.monotonic() - lag_measured_at >= LAG_EVERY_SECONDS:
                lag_measured_at = time.monotonic()
                for tp, end in (await consumer.end_offsets(tps)).items():
                    sink.metrics.lag.labels(FACTS, str(tp.partition)).set(max(0, end - await consumer.position(tp)))
            fetched = await consumer.getmany(timeout_ms=200)
            if fetched:
                await asyncio.to_thread(sink.write, fetched)
                if progress is not None:
                    progress(sink.messages)
            await asyncio.to_thread(sink.publish)
            # Caught up: an empty fetch at the partitions' ends.
            if settings.stop_when_caught_up and not fetched and await _caught_up(consumer, tps):
                break
        await asyncio.to_thread(sink.publish, True)
        log.info("sink stopped", extra={"messages": sink.messages, "redelivered": sink.redelivered, "db": str(settings.db)})
        return sink.messages
    finally:
        await consumer.stop()
        sink.close()


async def _facts_partitions(settings: SinkSettings, stopping: asyncio.Event) -> list[int]:
    """The facts topic's partitions, once it exists (empty if stopped before; a batch run refuses instead)."""
    if settings.stop_when_caught_up:
        count = (await partition_counts(settings.bootstrap, (FACTS,))).get(FACTS, 0)
        if not count:
            raise TopicLayoutError(f"topic {FACTS} does not exist yet; start `spoc worker` first, it creates it")
        return list(range(count))
    return list(range(await wait_for_topic(settings.bootstrap, FACTS, stopping)))


async def _caught_up(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> bool:
    for tp, listed in (await consumer.end_offsets(tps)).items():
        if await consumer.position(tp) < max(listed, readable_end(consumer, tp) or 0):
            return False
    return True


def published_offsets(snapshot: Path) -> dict[int, int]:
    """How far the facts in a published snapshot go: each partition's next offset (empty before the first)."""
    if not snapshot.exists():
        return {}
    with duckdb.connect() as con:  # a fresh reader: ATTACH sees the newest snapshot (docs/reliability.md)
        con.execute(f"ATTACH '{quoted(snapshot)}' AS snap (READ_ONLY)")
        return dict(con.execute("SELECT partition, next_offset FROM snap.sink_offsets WHERE topic = ?", [FACTS]).fetchall())
