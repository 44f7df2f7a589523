"""``spoc worker``: the faust-streaming app that keeps the ledger live.

faust owns the consumer group (partition assignment, rebalances, offset
commits), the owners table with its changelog, and the web server; the ledger
work itself is :class:`processors.live.engine.LiveLedger`, the same intake step
as ``spoc replay``.  Messages arrive in batches (``take_events``) and are queued
per partition; the ledger store's positions, not the committed offsets, say what
is done (see ``live_ledger``).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import faust
from faust.streams import Stream
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, EventT, TransportT
from faust.types.tables import TableT
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST

from processors.kafka.reading import Incoming, broadcast_copy
from processors.kafka.security import kafka_security
from processors.kafka.topics import TOUCHPOINTS
from processors.live.engine import LiveLedger, LiveSettings
from processors.live.metrics import WorkerMetrics
from processors.live.partition import OwnerView
from processors.live.readiness import DEFAULT_MAX_LAG, readiness
from processors.live.web_guard import guard
from processors.patches.faust_direct_delivery import DirectDeliveryConsumer
from processors.patches.faust_fetch_settings import FetchTunedConsumer

log = logging.getLogger("spoc.worker")

APP_ID = "spoc-worker"
OWNERS_TABLE = "owners"
CHANGELOG_DRAIN_SECONDS = 30.0
"""How long a stopping worker waits for its buffered owners-table updates to be sent."""
OWNERS_CHANGELOG_CONFIGS = {"max.compaction.lag.ms": str(86_400_000), "delete.retention.ms": str(86_400_000)}
"""An erased customer's entry ends with a tombstone: compaction drops the values before it within a
day (Apache Kafka's log cleaner), and the tombstone itself a day later."""
# aiohttp takes the charset apart from the content type.
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST.split(";charset")[0].split("; charset")[0]


@dataclass(frozen=True)
class WorkerSettings:
    live: LiveSettings
    partitions: int
    group: str = APP_ID
    """The consumer group (faust app id); the owners table's changelog topic is named after it."""
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    http_token: str | None = None
    """Required as a bearer token on every request, when set (``processors/live/web_guard.py``)."""
    max_batch: int = 1000
    batch_within_seconds: float = 0.002
    data_dir: str | None = None
    ready_max_lag: int = DEFAULT_MAX_LAG
    """``/readyz``: messages a held partition may be behind its end."""
    exactly_once: bool = False
    """faust's ``processing_guarantee="exactly_once"`` (Kafka transactions for its offsets and the
    owners changelog), and the outputs published in per-partition transactions."""

    @property
    def engine(self) -> LiveSettings:
        """The engine's settings; the transactional ids are the group's, one per partition."""
        if not self.exactly_once:
            return self.live
        return replace(self.live, transactional_id_prefix=f"{self.group}-spoc-outputs")


class _Consumer(DirectDeliveryConsumer, FetchTunedConsumer):
    pass


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class SpocApp(faust.App):
    """A faust app whose input consumer is patched (:mod:`processors.patches`): a short fetch wait,
    committed input only, direct delivery."""

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)


def faust_broker(bootstrap: str) -> str:
    """``host1:9092,host2:9092`` in faust's URL form."""
    return ";".join(f"kafka://{server.strip()}" for server in bootstrap.split(",") if server.strip())


def build_app(settings: WorkerSettings) -> faust.App:
    """The worker: the ledger agent on the touchpoints, the owners table behind ``/owners``, ``/metrics``."""
    app = _new_app(settings)
    metrics = WorkerMetrics()
    owners = _owners_table(app, settings.partitions)
    owner_sink = OwnersTable(owners)
    engine = LiveLedger(settings.engine, metrics, owner_sink)
    _add_ledger_agent(app, settings, engine, metrics)
    _follow_rebalances(app, engine, owner_sink)
    app.on_before_shutdown.connect(drain_changelog)  # type: ignore[arg-type]  # see _follow_rebalances
    _add_pages(app, owners, metrics, engine, settings)
    app.web.web_app.middlewares.append(guard(settings.http_token))  # type: ignore[attr-defined]  # faust's aiohttp driver
    return app


def _new_app(settings: WorkerSettings) -> SpocApp:
    return SpocApp(
        settings.group,
        broker=faust_broker(settings.live.bootstrap),
        store="memory://",
        datadir=settings.data_dir or tempfile.mkdtemp(prefix="spoc-worker-"),
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        canonical_url=f"http://{settings.web_host}:{settings.web_port}",
        topic_partitions=settings.partitions,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_interval=1.0,
        # A restarted or added worker should not wait a minute for the group to settle.
        broker_session_timeout=6.0,  # Apache Kafka's minimum by default
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=6.0,
        web_access_log=None,
        # faust's own pages (who holds which partition, table contents) are not served (web_guard.py).
        web_router_enabled=False, web_tables_enabled=False, web_graph_enabled=False, web_stats_enabled=False,
        web_metrics_enabled=False,
        processing_guarantee="exactly_once" if settings.exactly_once else "at_least_once",
        # faust compares the changelog offsets a standby has read with the broker's ListOffsets answer.
        # The embedded broker can answer an end below offsets already read (a plain aiokafka check: read
        # up to 3578, end 3574), so a worker taking over a dead one's partition crashed on a "persisted
        # offset higher than highwater" (found by the two-worker kill loop).  The memory store persists
        # nothing: the check guards nothing here.
        recovery_consistency_check=False,
        # No standby copies of the owners table on other workers: faust's recovery seeked a standby
        # partition to an invalid offset after a takeover on the embedded broker and the worker crashed
        # ("Offset must be a positive integer", found by the two-worker kill loop).  A worker that takes
        # a partition over reads its owners from the changelog, as it reads the partition's state from
        # its checkpoint and input.
        table_standby_replicas=0,
        broker_credentials=kafka_security().faust_credentials(),
    )


def _owners_table(app: faust.App, partitions: int) -> TableT[bytes, Any]:
    # Raw (bytes) keys hash like the touchpoints' keys: a customer's owner lives in
    # the changelog partition of its touchpoints, so /owners routes to their worker.
    return app.Table(
        OWNERS_TABLE, key_type=bytes, value_type=None, partitions=partitions,
        use_partitioner=True, help="customer_id -> current owner, since, reason",
        extra_topic_configs=OWNERS_CHANGELOG_CONFIGS,
    )


class OwnersTable:
    """The engine's owner sink: each customer's new owner into the faust table (None: forget the customer).

    From a partition assignment until faust has recovered the table from its changelog, writes are
    held, each customer's last only, and then made where they change what the table holds: a
    restart's rebuild finds most owners unchanged and writes nothing for them, where writing at
    once wrote every owner again (the table was not recovered yet to compare with)."""

    def __init__(self, table: TableT[bytes, Any]) -> None:
        self.table = table
        self.held: dict[str, OwnerView | None] | None = None

    def __call__(self, customer_id: str, view: OwnerView | None) -> None:
        if self.held is not None:
            self.held[customer_id] = view
        else:
            self._write(customer_id, view)

    def hold(self) -> None:
        if self.held is None:
            self.held = {}

    def release(self) -> None:
        held, self.held = self.held or {}, None
        for customer_id, view in held.items():
            self._write(customer_id, view)

    def _write(self, customer_id: str, view: OwnerView | None) -> None:
        key = customer_id.encode()
        if view is None:
            self.table.pop(key, None)
            return
        value = view.as_json()
        if self.table.get(key) != value:
            self.table[key] = value


def _add_ledger_agent(app: faust.App, settings: WorkerSettings, engine: LiveLedger, metrics: WorkerMetrics) -> None:
    touchpoints = app.topic(
        TOUCHPOINTS, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
        allow_empty=True, partitions=settings.partitions,
    )

    @app.agent(touchpoints)
    async def ledger_agent(stream: faust.StreamT[bytes]) -> None:
        await engine.start()
        try:
            batches = cast("Stream[bytes]", stream).take_events(settings.max_batch, within=settings.batch_within_seconds)
            async for events in batches:
                await _deliver(events, app, engine, metrics)
        finally:
            await engine.stop()


async def _deliver(events: Sequence[EventT[Any]], app: faust.App, engine: LiveLedger, metrics: WorkerMetrics) -> None:
    """One batch from faust to the engine, split by partition; each partition's lag after it."""
    by_partition: dict[int, list[Incoming]] = defaultdict(list)
    for event in events:
        message = event.message
        by_partition[message.partition].append(
            Incoming(
                message.offset, message.key, message.value or b"", broadcast_copy(message.headers),
                int(message.timestamp * 1000),
            )
        )
    for partition, messages in by_partition.items():
        await engine.submit(partition, messages)
        metrics.lag.labels(*metrics.of(partition)).set(
            max(0, app.consumer.highwater(TP(TOUCHPOINTS, partition)) - messages[-1].offset - 1)
        )


def _follow_rebalances(app: faust.App, engine: LiveLedger, owner_sink: OwnersTable) -> None:
    # faust types a signal's receiver as (sender, *args, **kwargs); each of these names the argument it gets.
    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(app: faust.App, revoked: set[TP], **_: Any) -> None:
        await engine.release({tp.partition for tp in revoked if tp.topic == TOUCHPOINTS})

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(app: faust.App, assigned: set[TP], **_: Any) -> None:
        owner_sink.hold()  # until faust has recovered the owners table
        await engine.start()
        engine.catch_up({tp.partition for tp in assigned if tp.topic == TOUCHPOINTS})

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def on_recovered(app: faust.App, **_: Any) -> None:
        owner_sink.release()


async def drain_changelog(app: faust.App, **_: Any) -> None:
    """Send every buffered owners-table update before faust stops its producer.

    faust's own flush returns once 0.1 s pass without a send completing, and then stops the
    producer under the sends still buffered: the shutdown crashes (exit 1).  Seen on SIGTERM
    just after a partition rebuild had filled the buffer.
    """
    buffer = app.producer.buffer
    deadline = time.monotonic() + CHANGELOG_DRAIN_SECONDS
    while buffer.size and time.monotonic() < deadline:
        await buffer.flush()
    if buffer.size:
        log.warning("owners changelog not drained at shutdown", extra={"messages": buffer.size})


def _add_pages(
    app: faust.App, owners: TableT[bytes, Any], metrics: WorkerMetrics, engine: LiveLedger, settings: WorkerSettings
) -> None:
    partitions = settings.partitions

    @app.page("/owners/{customer_id}")
    @app.table_route(table=owners, match_info="customer_id")
    async def owner_of(web: View, request: Request, customer_id: str) -> Response:
        view = owners.get(customer_id.encode())
        if view is None:
            return web.json(
                {"customer_id": customer_id, "error": "no owner known for this customer (unknown, unowned or erased)"},
                status=404,
            )
        return web.json({"customer_id": customer_id, **view})

    @app.page("/route/{customer_id}")
    @app.table_route(table=owners, match_info="customer_id")  # the owners table is co-partitioned with the input
    async def route_of(web: View, request: Request, customer_id: str) -> Response:
        answer = await engine.route_of(customer_id, partitions)
        if answer is None:
            return web.json(
                {"customer_id": customer_id,
                 "error": "no event known for this customer on the worker that holds its partition (unknown or erased)"},
                status=404,
            )
        return web.json(answer.as_dict())

    @app.page("/metrics")
    async def prometheus(web: View, request: Request) -> Response:
        return web.bytes(metrics.render(), content_type=METRICS_CONTENT_TYPE)

    @app.page("/healthz")
    async def health(web: View, request: Request) -> Response:
        return web.json({"status": "up"})

    @app.page("/readyz")
    async def ready(web: View, request: Request) -> Response:
        def end_of(partition: int) -> int | None:
            return cast("int | None", app.consumer.highwater(TP(TOUCHPOINTS, partition)))

        held = {tp.partition for tp in app.consumer.assignment() if tp.topic == TOUCHPOINTS}
        answer = readiness(
            engine.assigned_once, bool(app.rebalancing), held, {p: s.next_offset for p, s in engine.states.items()}, end_of,
            settings.ready_max_lag,
        )
        return web.json(answer.as_json(), status=200 if answer.ready else 503)


def run_worker(settings: WorkerSettings, log_level: str = "INFO") -> None:
    """Run until SIGTERM / Ctrl-C; queued batches are finished and offsets committed on the way out."""
    from faust.worker import Worker

    from processors.runtime.logs import json_logging_config

    app = build_app(settings)
    worker = Worker(
        app, loglevel=log_level, logging_config=json_logging_config(log_level), quiet=True,
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()
