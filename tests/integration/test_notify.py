"""``spoc notify`` against a real local HTTP server that fails in scripted ways, on a real broker."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import orjson
from aiokafka import AIOKafkaProducer
from standardwebhooks import Webhook

from benchmarks.workload import generate
from processors.kafka.topics import (
    ALL_TOPICS,
    FOLLOW_UPS,
    HANDOFFS,
    OWNER_CHANGED,
    OWNER_CHANGED_DLQ,
    TOPIC_CONFIGS,
    ensure_topics,
    partition_counts,
)
from processors.runtime.child_process import die_with_parent
from schemas.ledger_messages import OwnerChangedV1
from spoc.worker_process import free_port
from tests.live import publish_file, read_records, read_topic, running, topic_configs, wait_for_workers, worker
from tests.webhook_receiver import Attempt, receiving

SECRET = "whsec_" + base64.b64encode(b"spoc-notify-test-secret-32-bytes").decode()
CUSTOMERS = [f"cust-{i}" for i in range(6)]


def owner_changes(customers: list[str], per_customer: int) -> list[OwnerChangedV1]:
    changes = []
    for version in range(1, per_customer + 1):
        for customer in customers:
            changes.append(OwnerChangedV1(
                ledger_event_id=f"rel-{customer}:{version}", event_type="OwnerAssigned" if version == 1 else "OwnerChanged",
                customer_id=customer, previous_owner_id=None if version == 1 else f"emp-{version - 1}",
                owner_id=f"emp-{version}", reason="first_productive_contact" if version == 1 else "affinity",
                affinities={f"emp-{version}": 2.5}, trigger_event_id=f"tp-{customer}-{version}",
                occurred_at=datetime(2025, 3, 1, 10, version, tzinfo=UTC), relationship_id=f"rel-{customer}",
                version=version,
            ))
    return changes


def publish_changes(bootstrap: str, changes: list[OwnerChangedV1], extra: list[bytes] = ()) -> None:  # type: ignore[assignment]
    async def run() -> None:
        await ensure_topics(bootstrap, ALL_TOPICS, 3)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for change in changes:
                await producer.send(OWNER_CHANGED, msgspec.json.encode(change), key=change.customer_id.encode())
            for value in extra:
                await producer.send(OWNER_CHANGED, value, key=b"cust-0")
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(run())


class Notify:
    """``spoc notify`` as a user runs it, in its own process."""

    def __init__(self, bootstrap: str, urls: list[str], log: Path, *options: str) -> None:
        self.metrics_port = free_port()
        group = f"spoc-notify-{log.parent.name}"  # one per test: an external broker keeps groups' offsets
        args = [sys.executable, "-m", "spoc", "notify", "--bootstrap", bootstrap, "--secret-env", "SPOC_TEST_WEBHOOK_SECRET",
                "--metrics-port", str(self.metrics_port), "--group", group, *options]
        for url in urls:
            args += ["--webhook", url]
        self.log = log.open("ab")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=self.log, preexec_fn=die_with_parent,
                                        env={**os.environ, "SPOC_TEST_WEBHOOK_SECRET": SECRET})

    def _metrics(self) -> str:
        """The notifier's /metrics page; empty while it is still starting."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
                return str(response.read().decode())
        except OSError:
            return ""

    def metric(self, name: str, endpoint: str) -> float:
        for line in self._metrics().splitlines():
            if line.startswith(name + "{") and f'endpoint="{endpoint}"' in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def lags(self) -> dict[int, float]:
        """Each partition's owner changes not yet delivered (those fetched at least once)."""
        found = re.findall(r'^spoc_webhook_lag\{partition="(\d+)",topic="[^"]+"\} (\S+)$', self._metrics(), re.M)
        return {int(p): float(v) for p, v in found}

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(30)
        self.log.close()
        return code


def wait_for(condition: Callable[[], bool], timeout: float = 90, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def dead_letters(bootstrap: str) -> list[tuple[bytes, dict[str, str]]]:
    return [(r.value, {k: v.decode() for k, v in r.headers}) for r in read_records(bootstrap, OWNER_CHANGED_DLQ)]


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def wait_until_caught_up(notify: Notify, bootstrap: str, topic: str = OWNER_CHANGED) -> None:
    """Until the notifier has fetched every partition of the topic and finished everything it fetched."""
    partitions = asyncio.run(partition_counts(bootstrap, (topic,)))[topic]

    def caught_up() -> bool:
        lags = notify.lags()
        return len(lags) == partitions and not any(lags.values())

    wait_for(caught_up, what="the notifier at the end of every partition")
    metrics = notify._metrics()
    assert re.search(r'^spoc_build_info\{component="notifier",python="[^"]+",version="[^"]+"\} 1\.0$', metrics, re.M)
    assert "_created" not in metrics


def in_order_per_customer(received: list[Attempt]) -> bool:
    """Whether each customer's changes, as a receiver that dedupes by webhook-id keeps them, came in version order."""
    versions: dict[str, list[int]] = defaultdict(list)
    seen: set[str] = set()
    for attempt in received:
        if attempt.webhook_id in seen:
            continue
        seen.add(attempt.webhook_id)
        data = orjson.loads(attempt.body)["data"]
        versions[data["customer_id"]].append(data["version"])
    return all(v == sorted(v) for v in versions.values())


PATHS = ["/ok", "/flaky", "/slow", "/reset", "/throttle", "/reject", "/down"]


def test_every_endpoint_gets_what_it_should_signed_in_order_and_the_rest_is_dead_lettered(
    tmp_path: Path, pipeline_bootstrap: str
) -> None:
    changes = owner_changes(CUSTOMERS, 3)
    ids = {c.ledger_event_id for c in changes}
    publish_changes(pipeline_bootstrap, changes, extra=[b"{not json"])
    with receiving() as receiver:
        notify = Notify(pipeline_bootstrap, [receiver.url(p) for p in PATHS], tmp_path / "notify.log",
                        "--timeout", "1", "--max-attempts", "3")
        try:
            everything_settled = lambda: (  # noqa: E731
                len(receiver.delivered("/ok")) >= len(ids) and len(receiver.tried("/down")) >= 3 * len(ids)
                and notify.metric("spoc_webhook_dead_lettered_total", receiver.url("/down")) >= len(ids)
            )
            wait_for(everything_settled, what="deliveries and dead letters")
            wait_until_caught_up(notify, pipeline_bootstrap)  # anything extra would show now
            metrics = {
                p: (notify.metric("spoc_webhook_delivered_total", receiver.url(p)),
                    notify.metric("spoc_webhook_retried_total", receiver.url(p)),
                    notify.metric("spoc_webhook_dead_lettered_total", receiver.url(p)))
                for p in PATHS
            }
            assert notify.stop() == 0
        finally:
            notify.stop(signal.SIGKILL)
        verifier = Webhook(SECRET)
        published = {c.ledger_event_id: msgspec.to_builtins(c) for c in changes}
        for path in PATHS:
            delivered = receiver.delivered(path)
            # Each delivered once, with a verifying signature, a CloudEvent around the owner change, in order.
            assert len(delivered) == len({a.webhook_id for a in delivered}), path
            for attempt in delivered:
                event = verifier.verify(attempt.body, attempt.headers)
                assert event["specversion"] == "1.0" and event["id"] == attempt.webhook_id
                assert event["subject"] == event["data"]["customer_id"]
                assert event["data"] == published[attempt.webhook_id]
                assert attempt.headers["Content-Type"] == "application/cloudevents+json"
            assert in_order_per_customer(delivered), path
        tried: dict[str, defaultdict[str, int]] = {p: defaultdict(int) for p in PATHS}
        for path in PATHS:
            for attempt in receiver.tried(path):
                tried[path][attempt.webhook_id] += 1
        rejected = {i for i in ids if i.split(":")[0][-1] in "02468"}
        assert {a.webhook_id for a in receiver.delivered("/ok")} == ids
        assert all(tried["/ok"][i] == 1 for i in ids)
        assert all(tried["/flaky"][i] == 3 for i in ids)  # 500, 500, 200
        assert all(tried["/slow"][i] == 2 for i in ids)  # timed out, 200
        assert all(tried["/reset"][i] == 2 for i in ids)  # cut, 200
        assert all(tried["/down"][i] == 3 for i in ids)  # 503 until the attempts run out
        assert all(tried["/reject"][i] == 1 for i in ids)  # 400 is not retried (nor is a 200)
        assert {a.webhook_id for a in receiver.delivered("/reject")} == ids - rejected
        for i in ids:  # Retry-After: 1 honoured
            first, second = [a.at for a in receiver.tried("/throttle") if a.webhook_id == i]
            assert second - first >= 0.95
        for path in ("/ok", "/flaky", "/slow", "/reset", "/throttle"):
            assert {a.webhook_id for a in receiver.delivered(path)} == ids, path

    letters = dead_letters(pipeline_bootstrap)
    by_endpoint: dict[str | None, set[object]] = defaultdict(set)
    for value, headers in letters:
        assert headers["spoc-dlq-source-topic"] == OWNER_CHANGED
        key = value if value == b"{not json" else orjson.loads(value)["ledger_event_id"]
        by_endpoint[headers.get("spoc-webhook-endpoint")].add(key)
    assert by_endpoint[receiver.url("/down")] == ids
    assert by_endpoint[receiver.url("/reject")] == rejected
    down_errors = {h["spoc-webhook-error"] for _, h in letters if h.get("spoc-webhook-endpoint") == receiver.url("/down")}
    assert down_errors == {"HTTP 503"}
    assert all(h["spoc-webhook-attempts"] == "3" for _, h in letters if h.get("spoc-webhook-endpoint") == receiver.url("/down"))
    assert by_endpoint[None] == {b"{not json"}
    assert len(letters) == len(ids) + len(rejected) + 1

    # What the operator reads at /metrics.
    n = len(ids)
    assert metrics["/ok"] == (n, 0, 0)
    assert metrics["/flaky"] == (n, 2 * n, 0)
    assert metrics["/slow"] == (n, n, 0)
    assert metrics["/reset"] == (n, n, 0)
    assert metrics["/throttle"] == (n, n, 0)
    assert metrics["/reject"] == (n - len(rejected), 0, len(rejected))
    assert metrics["/down"] == (0, 2 * n, n)
    if os.environ.get("SPOC_TEST_BOOTSTRAP") or os.environ.get("SPOC_TEST_BROKER") == "apache":
        reported = asyncio.run(topic_configs(pipeline_bootstrap, OWNER_CHANGED_DLQ))
        assert {k: reported[k] for k in TOPIC_CONFIGS[OWNER_CHANGED_DLQ]} == TOPIC_CONFIGS[OWNER_CHANGED_DLQ]


def test_a_notifier_killed_mid_stream_delivers_again_and_skips_nothing(tmp_path: Path, pipeline_bootstrap: str) -> None:
    changes = owner_changes([f"cust-{i}" for i in range(30)], 10)  # 300 owner changes
    ids = {c.ledger_event_id for c in changes}
    publish_changes(pipeline_bootstrap, changes)
    with receiving() as receiver:
        first = Notify(pipeline_bootstrap, [receiver.url("/steady")], tmp_path / "notify.log")
        try:
            wait_for(lambda: len(receiver.delivered("/steady")) >= 60, what="the first deliveries")
        finally:
            assert first.stop(signal.SIGKILL) == -signal.SIGKILL
        at_kill = len(receiver.delivered("/steady"))
        assert at_kill < len(ids), "the notifier finished before it was killed"
        second = Notify(pipeline_bootstrap, [receiver.url("/steady")], tmp_path / "notify.log")
        try:
            wait_for(lambda: {a.webhook_id for a in receiver.delivered("/steady")} == ids, what="every owner change")
            wait_until_caught_up(second, pipeline_bootstrap)
        finally:
            assert second.stop() == 0
        delivered = receiver.delivered("/steady")
        # Nothing skipped; repeats only of what was in flight at the kill (same webhook-id: receivers dedupe).
        assert {a.webhook_id for a in delivered} == ids
        assert len(delivered) - len(ids) <= 500  # at most one uncommitted fetch
        assert in_order_per_customer(delivered)
        # A third start has nothing left to deliver: offsets were committed.
        before = len(receiver.delivered("/steady"))
        third = Notify(pipeline_bootstrap, [receiver.url("/steady")], tmp_path / "notify.log")
        wait_until_caught_up(third, pipeline_bootstrap)
        assert third.stop() == 0
        assert len(receiver.delivered("/steady")) == before


def test_the_documented_receiver_verifies_and_prints_each_change_once(tmp_path: Path, pipeline_bootstrap: str) -> None:
    changes = owner_changes(CUSTOMERS, 2)
    publish_changes(pipeline_bootstrap, changes)
    port = free_port()
    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "webhook_receiver.py"
    receiver = subprocess.Popen([sys.executable, str(example)], stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent,
                                env={**os.environ, "SPOC_WEBHOOK_SECRET": SECRET, "PORT": str(port)})
    try:
        wait_for(lambda: listening(port), what="the documented receiver listening")
        notify = Notify(pipeline_bootstrap, [f"http://127.0.0.1:{port}/"], tmp_path / "notify.log")
        try:
            wait_for(lambda: notify.metric("spoc_webhook_delivered_total", f"http://127.0.0.1:{port}/") == len(changes),
                     what="deliveries to the documented receiver")
        finally:
            assert notify.stop() == 0
    finally:
        receiver.terminate()
        printed = receiver.communicate(timeout=10)[0].splitlines()
    assert sorted(printed) == sorted(
        f"{c.customer_id}: {c.previous_owner_id} -> {c.owner_id} ({c.reason})" for c in changes
    )


FOLLOW_UP_TYPES = {
    "FollowUpDue": "io.spoc-ledger.follow-up.due.v1",
    "FollowUpDone": "io.spoc-ledger.follow-up.done.v1",
    "FollowUpDropped": "io.spoc-ledger.follow-up.dropped.v1",
}


def _delivered_from_the_worker(
    tmp_path: Path, bootstrap: str, topic: str, source: str
) -> tuple[dict[str, dict[str, Any]], list[tuple[dict[str, Any], dict[str, Any]]]]:
    """A worker's notices on ``topic`` (by idempotency key), delivered by ``spoc notify`` to an endpoint that
    takes them and one that is down.  Checks that each reached the first once, signed, as a CloudEvent from
    ``source`` about its customer, and that the second's went to the dead letters; returns the notices and the
    delivered (event, notice) pairs in delivery order."""
    events = tmp_path / "touchpoints.jsonl"
    events.write_bytes(b"\n".join(generate(3_000, customers=300, seed=5, dirty=0.0)) + b"\n")
    publish_file(bootstrap, events)
    group = f"spoc-test-{tmp_path.name[-20:]}"
    with running([worker(bootstrap, f"sqlite:///{tmp_path}/ledger.sqlite", tmp_path / "worker.log", group)]) as [w]:
        wait_for_workers(bootstrap, [w])
        assert w.terminate() == 0
    notices = {m["idempotency_key"]: m for m in read_topic(bootstrap, topic)}
    assert notices, f"the workload must make {topic} notices"
    with receiving() as receiver:
        notify = Notify(bootstrap, [receiver.url("/ok"), receiver.url("/down")], tmp_path / "notify.log",
                        "--topic", topic, "--max-attempts", "1")
        try:
            wait_until_caught_up(notify, bootstrap, topic)
            assert notify.stop() == 0
        finally:
            notify.stop(signal.SIGKILL)
    delivered = receiver.delivered("/ok")
    assert sorted(a.webhook_id for a in delivered) == sorted(notices)  # each once
    verifier = Webhook(SECRET)
    pairs = []
    for attempt in delivered:
        event = verifier.verify(attempt.body, attempt.headers)
        notice = notices[attempt.webhook_id]
        assert event["data"] == notice and event["subject"] == notice["customer_id"] and event["source"] == source
        pairs.append((event, notice))
    letters = read_records(bootstrap, f"{topic}.dlq")
    assert sorted(orjson.loads(r.value)["idempotency_key"] for r in letters) == sorted(notices)
    assert {dict(r.headers)["spoc-webhook-endpoint"].decode() for r in letters} == {receiver.url("/down")}
    return notices, pairs


def test_follow_ups_from_the_worker_reach_every_endpoint_signed_in_order_or_the_dead_letters(
    tmp_path: Path, pipeline_bootstrap: str
) -> None:
    notices, delivered = _delivered_from_the_worker(tmp_path, pipeline_bootstrap, FOLLOW_UPS, "/spoc-ledger/follow-ups")
    assert {m["event_type"] for m in notices.values()} == set(FOLLOW_UP_TYPES), "the workload must make every kind"
    seen: dict[str, list[str]] = defaultdict(list)
    for event, notice in delivered:
        assert event["type"] == FOLLOW_UP_TYPES[notice["event_type"]]
        seen[notice["follow_up_id"]].append(notice["event_type"])
    # A follow-up is noticed due before it is closed (one partition per customer, delivered in order).
    assert all(kinds[0] == "FollowUpDue" and len(kinds) <= 2 for kinds in seen.values())


def test_handoffs_from_the_worker_reach_every_endpoint_signed_in_order_or_the_dead_letters(
    tmp_path: Path, pipeline_bootstrap: str
) -> None:
    """An owner hears at once that their customer was bounced: each handoff on ``spoc.handoffs`` reaches the
    endpoint once, in the order of the customer's touches."""
    notices, delivered = _delivered_from_the_worker(tmp_path, pipeline_bootstrap, HANDOFFS, "/spoc-ledger/handoffs")
    assert {m["kind"] for m in notices.values()} == {"transfer", "redirect", "bounce"}, "the workload must make every kind"
    assert any(m["owner_id"] for m in notices.values()), "handoffs must name the customer's owner"
    by_customer: dict[str, list[str]] = defaultdict(list)
    for event, notice in delivered:
        assert event["type"] == "io.spoc-ledger.handoff.v1"
        by_customer[notice["customer_id"]].append(notice["occurred_at"])
    published: dict[str, list[str]] = defaultdict(list)
    for notice in notices.values():  # the topic's order, one partition per customer
        published[notice["customer_id"]].append(notice["occurred_at"])
    assert by_customer == published
