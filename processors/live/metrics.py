"""The worker's Prometheus metrics (served at ``/metrics``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram, generate_latest

from ledger.relationship import OWNER_EVENTS
from processors.kafka.topics import TOUCHPOINTS
from processors.live.partition import Effects
from processors.runtime.prometheus import new_registry
from processors.runtime.state_store import CacheBudget, SpillingMapping

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


PARTITION_LABELS = ["topic", "partition"]


class WorkerMetrics:
    def __init__(self, topic: str = TOUCHPOINTS) -> None:
        self.topic = topic
        self.registry = new_registry("worker")
        r = self.registry
        self.events = Counter("spoc_events_processed", "Input messages processed, by result", ["result"], registry=r)
        self.dead_letters = Counter(
            "spoc_events_dead_lettered", "Input messages sent to the dead-letter topic, by reason", ["reason"],
            registry=r,
        )
        self.owner_changes = Counter("spoc_owner_changes", "Owner decisions published, by reason", ["reason"], registry=r)
        self.ledger_events = Counter("spoc_ledger_events_written", "Ledger events stored", registry=r)
        self.position = Gauge(
            "spoc_partition_position", "Next input offset of each partition whose effects are all made",
            PARTITION_LABELS, registry=r,
        )
        self.lag = Gauge("spoc_consumer_lag", "Messages behind the end of each input partition", PARTITION_LABELS, registry=r)
        self.latency = Histogram(
            "spoc_processing_latency_seconds",
            "From the input message's Kafka timestamp until its effects are stored and published",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.rebuild_seconds = Histogram(
            "spoc_partition_rebuild_seconds",
            "Time to restore a partition's state (its last checkpoint and the input after it)",
            buckets=(0.01, 0.1, 1, 10, 60, 600), registry=r,
        )
        self.restored_messages = Gauge(
            "spoc_partition_restore_messages",
            "Input messages read to restore each partition's state the last time (after its checkpoint)",
            PARTITION_LABELS, registry=r,
        )
        self.restore_seconds = Gauge(
            "spoc_partition_restore_seconds", "Seconds the last restore of each partition's state took",
            PARTITION_LABELS, registry=r,
        )
        self.checkpoints = Counter("spoc_partition_checkpoints", "Partition states checkpointed", registry=r)
        self.checkpoint_seconds = Histogram(
            "spoc_partition_checkpoint_seconds", "Time to checkpoint a partition's state",
            buckets=(0.01, 0.1, 0.5, 1, 5, 30), registry=r,
        )

    def watch_state(self, budget: CacheBudget, mappings: Callable[[], list[SpillingMapping]]) -> None:
        """Report the customers' working state (``--state-cache-mb``) of the partitions held, read when scraped."""
        r = self.registry
        Gauge(
            "spoc_state_cache_bytes", "Memory charged to the customers kept in memory (approximate; the budget is "
            "--state-cache-mb)", registry=r,
        ).set_function(lambda: budget.used)
        on_disk = Gauge(
            "spoc_state_customers", "Customers of the partitions held, in memory or waiting on local disk", ["place"],
            registry=r,
        )
        on_disk.labels("memory").set_function(lambda: sum(m.in_memory for m in mappings()))
        on_disk.labels("disk").set_function(lambda: sum(len(m) - m.in_memory for m in mappings()))
        Gauge(
            "spoc_state_disk_loads", "Customers brought back from disk since the partitions held were restored",
            registry=r,
        ).set_function(lambda: sum(m.loads for m in mappings()))

    def of(self, partition: int) -> tuple[str, str]:
        """The labels of one input partition's series."""
        return self.topic, str(partition)

    def forget(self, partition: int) -> None:
        """The partition went to another worker: it reports the partition's position and lag from now on."""
        for gauge in (self.position, self.lag):
            with contextlib.suppress(KeyError):  # never reported here
                gauge.remove(*self.of(partition))

    def observe(self, partition: int, effects: Effects, ledger_events_written: int) -> None:
        self.position.labels(*self.of(partition)).set(effects.last_offset + 1)
        self.ledger_events.inc(ledger_events_written)
        for record in effects.records:
            if isinstance(record.event, OWNER_EVENTS):
                self.owner_changes.labels(record.event.reason).inc()
        self.events.labels("accepted").inc(effects.accepted)
        self.events.labels("duplicate").inc(effects.duplicates)
        for reason, count in effects.rejected.items():
            self.events.labels("rejected").inc(count)
            self.dead_letters.labels(reason).inc(count)
        now_ms = time.time() * 1000
        for timestamp_ms in effects.fresh_timestamps_ms:
            self.latency.observe(max(0.0, now_ms - timestamp_ms) / 1000)

    def render(self) -> bytes:
        return generate_latest(self.registry)
