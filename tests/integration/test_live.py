"""The live pipeline on a real broker: worker processes and the DuckDB sink equal `spoc replay`.

Each test publishes a generated workload (with departures, duplicates and malformed
lines), runs real `spoc worker` processes and the sink, and compares every table
with a batch replay of the same file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
import threading
import time
import uuid
from bisect import bisect_right
from collections import Counter, defaultdict
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from benchmarks.workload import generate
from ledger.errors import TerminalError
from ledger.policy import DEFAULT_POLICY, Policy
from processors.kafka.security import client_settings
from processors.kafka.topics import (
    ALL_TOPICS,
    FACTS,
    FOLLOW_UPS,
    HANDOFFS,
    OWNER_CHANGED,
    RELATIONSHIP_EVENTS,
    TOPIC_CONFIGS,
    TOUCHPOINTS_DLQ,
    partition_counts,
)
from processors.live.app import OWNERS_CHANGELOG_CONFIGS
from projections.duckdb_store import VIEWS
from spoc.policy_file import load_policy
from tests.live import (
    assert_cloudevent_headers,
    expected_follow_up_notices,
    project,
    publish_file,
    publish_paced,
    read_records,
    read_topic,
    read_values,
    running,
    slices,
    topic_configs,
    wait_for_workers,
    worker,
)
from tests.replaying import run_replay

# Columns that name where a row came from (file line vs topic offset) differ by design.
COMPARED = {
    "touchpoints": "* EXCLUDE (source, position, seq)",
    "rejected_events": "reason, detail, field, raw",
    "ledger_events": "* EXCLUDE (source, position, seq)",
    "control_events": "* EXCLUDE (source, position, seq)",
    "follow_up_facts": "* EXCLUDE (seq)",
    **dict.fromkeys(VIEWS, "*"),
}


def _tables(db: Path) -> dict[str, list[str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            name: sorted(map(repr, con.execute(f"SELECT {columns} FROM {name}").fetchall()))
            for name, columns in COMPARED.items()
        }


def _workload(tmp_path: Path, touches: int, seed: int) -> Path:
    path = tmp_path / "touchpoints.jsonl"
    path.write_bytes(b"\n".join(generate(touches, customers=touches // 8, seed=seed, dirty=0.02)) + b"\n")
    return path


def _stored_events(ledger: Path) -> Counter[tuple[str, int, str, bytes]]:
    """Every event in a SQLite ledger store (the events name no input position: live and replay store the same)."""
    with closing(sqlite3.connect(ledger)) as con:
        return Counter(con.execute("SELECT originator_id, originator_version, topic, state FROM stored_events"))


def _assert_live_equals_replay(tmp_path: Path, bootstrap: str, source: Path, policy: Policy = DEFAULT_POLICY) -> None:
    """The worker's ledger store (``tmp_path/ledger.sqlite``), its topics, and the sink's tables equal replay's.

    The sink is given no policy: it follows the one the worker's facts carry."""
    replayed, _ = run_replay(tmp_path, [source], name="replay", policy=policy)
    live_events, replayed_events = _stored_events(tmp_path / "ledger.sqlite"), _stored_events(tmp_path / "replay.ledger.sqlite")
    assert live_events == replayed_events, (
        f"ledger store: {sum((replayed_events - live_events).values())} events missing, "
        f"{sum((live_events - replayed_events).values())} unexpected"
    )
    live = tmp_path / "live.duckdb"
    project(bootstrap, live, f"sqlite:///{tmp_path}/ledger.sqlite")
    expected, actual = _tables(replayed), _tables(live)
    for name in COMPARED:
        assert actual[name] == expected[name], f"{name}: live differs from replay"
    assert expected["touchpoints"] and expected["handoffs"] and expected["rejected_events"] and expected["follow_ups"]

    # Every ledger decision reached the topics exactly once.
    with duckdb.connect(str(replayed), read_only=True) as con:
        decisions = con.execute(
            "SELECT relationship_id || ':' || version, customer_id, event_type FROM ledger_events"
        ).fetchall()
    owner_events = ("OwnerAssigned", "OwnerChanged")
    _assert_published_once(read_topic(bootstrap, RELATIONSHIP_EVENTS), decisions, _erased(source))
    _assert_published_once(
        read_topic(bootstrap, OWNER_CHANGED), [d for d in decisions if d[2] in owner_events], _erased(source)
    )
    assert len(read_values(bootstrap, TOUCHPOINTS_DLQ)) == len(expected["rejected_events"])
    _assert_follow_ups_noticed_once(bootstrap, replayed, policy)
    _assert_handoffs_published_once(bootstrap, replayed, _erased(source))
    for topic in (RELATIONSHIP_EVENTS, OWNER_CHANGED, FOLLOW_UPS, HANDOFFS):
        assert assert_cloudevent_headers(bootstrap, topic) > 0, topic


HANDOFF_FIELDS = (
    "customer_id, journey_id, from_event_id, to_event_id, from_department, to_department, from_employee_id, "
    "to_employee_id, kind, cross_department, reexplained, ping_pong, gap_seconds, occurred_at"
)


def _owners_at_handoffs(con: duckdb.DuckDBPyConnection) -> dict[str, str | None]:
    """Each handoff's owner by replay's ledger: the last owner decision made at or before the input position of
    the handoff's later touch (that touch's own decision included), by the handoff's idempotency key."""
    decisions: dict[str, list[tuple[int, int, str | None]]] = defaultdict(list)
    for customer, seq, version, owner in con.execute(
        "SELECT customer_id, seq, version, owner_id FROM ledger_events "
        "WHERE event_type IN ('OwnerAssigned', 'OwnerChanged') ORDER BY seq, version"
    ).fetchall():
        decisions[customer].append((seq, version, owner))
    owners: dict[str, str | None] = {}
    for customer, from_id, to_id, seq in con.execute(
        "SELECT h.customer_id, h.from_event_id, h.to_event_id, t.seq FROM handoffs h "
        "JOIN touchpoints t ON t.event_id = h.to_event_id"
    ).fetchall():
        made = decisions[customer]
        at = bisect_right(made, (seq, float("inf"), "")) if made else 0
        owners[f"{from_id}>{to_id}"] = made[at - 1][2] if at else None
    return owners


def _assert_handoffs_published_once(bootstrap: str, replayed: Path, erased: set[str]) -> None:
    """``spoc.handoffs`` holds each row of replay's ``handoffs`` table once, with its fields and the customer's
    owner at its time.  An erased customer's handoffs made before the erasure stay in the topic (docs/security.md)."""
    with duckdb.connect(str(replayed), read_only=True) as con:
        rows = con.execute(f"SELECT {HANDOFF_FIELDS} FROM handoffs").fetchall()
        owners = _owners_at_handoffs(con)
    names = [n.strip() for n in HANDOFF_FIELDS.split(",")]
    expected = {
        f"{r[2]}>{r[3]}": {**dict(zip(names, r, strict=True)), "owner_id": owners[f"{r[2]}>{r[3]}"]}
        for r in rows if r[0] not in erased
    }
    assert expected, "the workload must make handoffs"
    published = [m for m in read_topic(bootstrap, HANDOFFS) if m["customer_id"] not in erased]
    assert Counter(m["idempotency_key"] for m in published) == Counter(expected.keys()), "spoc.handoffs differs from handoffs"
    for message in published:
        want = expected[message["idempotency_key"]]
        got = {**{name: message[name] for name in (*names, "owner_id")},
               "occurred_at": datetime.fromisoformat(message["occurred_at"])}
        assert got == want, f"handoff {message['idempotency_key']}: published {got}, the table says {want}"


def _assert_follow_ups_noticed_once(bootstrap: str, replayed: Path, policy: Policy) -> None:
    """``spoc.follow-ups`` holds each notice once, as a worker that never crashed makes them; every follow-up
    that closed after it fell due (by §8: the replay's view) was noticed due and then closed."""
    notices = Counter(m["idempotency_key"] for m in read_topic(bootstrap, FOLLOW_UPS))
    assert notices == expected_follow_up_notices(bootstrap, policy)
    with duckdb.connect(str(replayed), read_only=True) as con:
        closed = con.execute("SELECT follow_up_id, status FROM follow_ups WHERE status <> 'open'").fetchall()
    assert closed, "the workload must close follow-ups"
    missing = [(i, s) for i, s in closed if not (notices[f"{i}:due"] and notices[f"{i}:{s}"])]
    assert not missing, f"{len(missing)} closed follow-ups not noticed, e.g. {missing[:3]}"


def _erased(source: Path) -> set[str]:
    """The customers a `customer_erased` line of ``source`` names."""
    erased: set[str] = set()
    for line in source.read_bytes().splitlines():
        with contextlib.suppress(orjson.JSONDecodeError):
            event = orjson.loads(line)
            if isinstance(event, dict) and event.get("type") == "customer_erased":
                erased.add(str(event.get("customer_id")))
    return erased


def _assert_published_once(
    published: list[dict[str, Any]], decisions: list[tuple[str, str, str]], erased: set[str]
) -> None:
    """Each decision replay keeps is published once.  An erased customer's decisions made before the
    erasure stay in the topic (docs/security.md), so for them the topic only has to hold every one kept."""
    def kept(ids: Counter[str]) -> Counter[str]:
        return Counter({i: n for i, n in ids.items() if i not in erased_ids})

    erased_ids = {m["ledger_event_id"] for m in published if m["customer_id"] in erased}
    on_topic = Counter(m["ledger_event_id"] for m in published)
    decided = Counter(i for i, _, _ in decisions)
    assert kept(on_topic) == kept(decided)
    assert not decided - on_topic, "a decision replay keeps was not published"


def test_worker_and_sink_give_the_tables_of_replay(tmp_path: Path, pipeline_bootstrap: str) -> None:
    source = _workload(tmp_path, 6_000, seed=11)
    publish_file(pipeline_bootstrap, source)
    group = f"spoc-test-{uuid.uuid4().hex[:8]}"
    with running([worker(pipeline_bootstrap, f"sqlite:///{tmp_path}/ledger.sqlite", tmp_path / "worker.log", group)]) as [only]:
        wait_for_workers(pipeline_bootstrap, [only])
        lines = source.read_bytes().count(b"\n")
        assert only.metric("spoc_events_processed_total") == lines
        assert only.metric("spoc_events_dead_lettered_total") > 0

        # The owners view answers for a customer with an owner, and 404 for a stranger.
        owner = duckdb.connect(str(run_replay(tmp_path, [source], name="lookup")[0]), read_only=True).execute(
            "SELECT customer_id, owner_id, reason FROM customer_owner ORDER BY customer_id LIMIT 1"
        ).fetchone()
        assert owner is not None
        status, body = only.get(f"/owners/{owner[0]}")
        assert status == 200 and orjson.loads(body)["owner_id"] == owner[1]
        assert only.get("/owners/nobody-at-all")[0] == 404

        # SIGTERM: a clean stop.
        assert only.terminate() == 0
    _assert_live_equals_replay(tmp_path, pipeline_bootstrap, source)


def test_a_policy_file_reaches_the_worker_and_the_sink(tmp_path: Path, pipeline_bootstrap: str) -> None:
    """Every SPEC number is a default the user can change: live, with the file replay gets, the same tables."""
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(
        "repeat_window_days = 2\nstability_margin = 0.5\nmin_days_between_changes = 3\nlate_event_horizon_days = 30\n"
        "check_in_days = 20\nfollow_up_after_hours = 12\n"
    )
    policy = load_policy(policy_file)
    source = _workload(tmp_path, 4_000, seed=17)
    publish_file(pipeline_bootstrap, source)
    group = f"spoc-test-{uuid.uuid4().hex[:8]}"
    ledger_url = f"sqlite:///{tmp_path}/ledger.sqlite"
    with running([worker(pipeline_bootstrap, ledger_url, tmp_path / "worker.log", group, "--policy", str(policy_file))]) as [only]:
        wait_for_workers(pipeline_bootstrap, [only])
        assert only.terminate() == 0
    _assert_live_equals_replay(tmp_path, pipeline_bootstrap, source, policy)
    # The policy changed what was decided, so a worker or sink that ignored it would have failed above.
    default, _ = run_replay(tmp_path, [source], name="default")
    assert _tables(default)["owner_history"] != _tables(tmp_path / "live.duckdb")["owner_history"]
    assert _tables(default)["repeat_contacts"] != _tables(tmp_path / "live.duckdb")["repeat_contacts"]
    assert _tables(default)["follow_ups"] != _tables(tmp_path / "live.duckdb")["follow_ups"]

    with duckdb.connect(str(tmp_path / "live.duckdb"), read_only=True) as con:
        assert con.execute("SELECT value FROM spoc_settings WHERE key = 'repeat_window_days'").fetchall() == [("2.0",)]

    # A sink given another policy than the file was written under says so instead of mixing them,
    with pytest.raises(TerminalError, match=r"another policy .*give `spoc project` the --policy the worker runs with"):
        project(pipeline_bootstrap, tmp_path / "live.duckdb", ledger_url, DEFAULT_POLICY)
    # and so does one given another policy than the worker's facts carry, before it writes anything.
    with pytest.raises(TerminalError, match=(
        r"the worker runs with another policy than `spoc project --policy` gives \(--policy → worker: "
        r"stability_margin 2\.0 → 0\.5, min_days_between_changes 30\.0 → 3\.0, repeat_window_days 7\.0 → 2\.0, "
        r"check_in_days 60\.0 → 20\.0, follow_up_after_hours 48\.0 → 12\.0, late_event_horizon_days None → 30\.0\)"
    )):
        project(pipeline_bootstrap, tmp_path / "defaults.duckdb", ledger_url, DEFAULT_POLICY)
    assert project(pipeline_bootstrap, tmp_path / "given.duckdb", ledger_url, policy) > 0
    # A sink given another ledger store than the worker's would find none of the customers' keys: it says so.
    with pytest.raises(TerminalError, match=(
        r"the facts are sealed with keys in another ledger store \(identity [0-9a-f]{32}\) than sqlite:///.*other\.sqlite "
        r"\(identity none, no worker has used it\); give `spoc project` the worker's ledger store: --ledger URL or "
        r"\$SPOC_LEDGER_URL"
    )):
        project(pipeline_bootstrap, tmp_path / "other.duckdb", f"sqlite:///{tmp_path}/other.sqlite")


def test_facts_delivered_twice_are_written_once(tmp_path: Path, pipeline_bootstrap: str) -> None:
    """A producer retry after a lost acknowledgement (seen on Apache Kafka as a leader went away) puts a
    facts message on the topic twice, right after itself or later; the sink writes it once, also
    when the copy arrives after the sink restarted."""
    source = _workload(tmp_path, 3_000, seed=17)
    group = f"spoc-test-{uuid.uuid4().hex[:8]}"
    with running([worker(pipeline_bootstrap, f"sqlite:///{tmp_path}/ledger.sqlite", tmp_path / "worker.log", group)]) as [only]:
        for i, part in enumerate(slices(source, 2)):  # two runs of work: two facts messages a partition
            (tmp_path / f"part-{i}.jsonl").write_bytes(part)
            publish_file(pipeline_bootstrap, tmp_path / f"part-{i}.jsonl")
            wait_for_workers(pipeline_bootstrap, [only])
        assert only.terminate() == 0
    project(pipeline_bootstrap, tmp_path / "live.duckdb", f"sqlite:///{tmp_path}/ledger.sqlite")

    by_partition: dict[int, list[Any]] = {}
    for record in read_records(pipeline_bootstrap, FACTS):
        by_partition.setdefault(record.partition, []).append(record)
    longest = max(by_partition.values(), key=len)
    assert len(longest) >= 2, "the workload should give some partition two facts messages"
    # The newest message twice more (an adjacent retry), and the oldest of the longest partition (a stale one).
    copies = [longest[-1], longest[-1], longest[0], *(records[-1] for records in by_partition.values())]

    async def redeliver() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=pipeline_bootstrap, **client_settings())
        await producer.start()
        try:
            for record in copies:
                await producer.send_and_wait(FACTS, record.value, partition=record.partition, headers=list(record.headers))
        finally:
            await producer.stop()

    asyncio.run(redeliver())
    _assert_live_equals_replay(tmp_path, pipeline_bootstrap, source)


def _hostile_lines(seed: int) -> list[bytes]:
    """Messages an attacker or a broken producer might send (one line each, under the broker's 1 MiB)."""
    rng = random.Random(seed)
    valid = {"event_id": "h-0", "occurred_at": "2024-05-01T09:00:00+00:00", "customer_id": "cust-0000001",
             "channel": "phone", "direction": "inbound", "department": "billing", "employee_id": "bil-001"}
    junk = [bytes(rng.choice([b for b in range(256) if b != 10]) for _ in range(rng.randrange(1, 400))) for _ in range(20)]
    return [
        *junk,
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
        orjson.dumps({**valid, "event_id": "h-1"})[:-1] + b',"x":' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        orjson.dumps({**valid, "event_id": "h-2", "topic": "\u202e" * 300_000}),
        orjson.dumps({**valid, "event_id": "h-3", "customer_id": "\x00\ud7ff\ufeff😀"}),
        orjson.dumps({**valid, "event_id": "h-4", "occurred_at": "0001-01-01T00:00:00+00:00"}),
        orjson.dumps({**valid, "event_id": "h-5", "occurred_at": "9999-12-31T23:59:59+00:00"}),
        orjson.dumps({**valid, "event_id": "h-6"})[:-1] + b',"csat":1000000000000000000000000000000,"sentiment":"NaN"}',
        orjson.dumps({**valid, "event_id": "h-7", "channel": ["phone"]}),
        orjson.dumps({**valid, "event_id": "h-8", "department": "legal"}),  # h-8 again, other content: a conflict
        orjson.dumps({**valid, "event_id": "h-8"}),
    ]


def test_hostile_messages_are_dead_lettered_and_the_worker_keeps_going(tmp_path: Path, pipeline_bootstrap: str) -> None:
    lines = _workload(tmp_path, 2_000, seed=13).read_bytes().splitlines()
    hostile = _hostile_lines(seed=3)
    for i, line in enumerate(hostile):
        lines.insert((i * 97) % len(lines), line)
    source = tmp_path / "hostile.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    publish_file(pipeline_bootstrap, source)
    group = f"spoc-test-{uuid.uuid4().hex[:8]}"
    with running([worker(pipeline_bootstrap, f"sqlite:///{tmp_path}/ledger.sqlite", tmp_path / "worker.log", group)]) as [only]:
        wait_for_workers(pipeline_bootstrap, [only])
        assert only.running and only.metric("spoc_events_processed_total") == len(lines)
        assert only.terminate() == 0
    _assert_live_equals_replay(tmp_path, pipeline_bootstrap, source)


def kill_mid_stream_and_restart(tmp_path: Path, bootstrap: str, source: Path, seed: int, *options: str) -> str:
    """A worker (with ``options``) SIGKILLed at a seeded point while the stream still flows, then
    restarted until it has processed everything; returns the group."""
    ledger = f"sqlite:///{tmp_path}/ledger.sqlite"
    group = f"spoc-test-{uuid.uuid4().hex[:8]}"
    lines = source.read_bytes().count(b"\n")
    target = random.Random(seed).randrange(lines // 5, lines // 2)  # a seeded kill point
    # The stream keeps flowing (about 10 s) while the worker dies and comes back.
    publisher = threading.Thread(target=publish_paced, args=(bootstrap, source, 40, 0.25))
    publisher.start()
    try:
        with running([worker(bootstrap, ledger, tmp_path / "worker.log", group, *options)]) as [first]:
            deadline = time.monotonic() + 120
            while sum(first.positions().values()) < target and time.monotonic() < deadline:
                time.sleep(0.02)
            at_kill = sum(first.positions().values())
            first.kill()
        assert target <= at_kill < lines, f"not killed mid-stream: at {at_kill} of {lines}"
        with running([worker(bootstrap, ledger, tmp_path / "worker.log", group, *options)]) as [second]:
            publisher.join()
            wait_for_workers(bootstrap, [second])
            assert second.terminate() == 0
    finally:
        publisher.join()
    return group


def test_a_worker_killed_mid_stream_and_restarted_neither_loses_nor_doubles(tmp_path: Path, pipeline_bootstrap: str) -> None:
    source = _workload(tmp_path, 30_000, seed=23)
    kill_mid_stream_and_restart(tmp_path, pipeline_bootstrap, source, seed=5)
    _assert_live_equals_replay(tmp_path, pipeline_bootstrap, source)


def test_two_workers_split_the_partitions(tmp_path: Path, pipeline_bootstrap: str) -> None:
    source = _workload(tmp_path, 8_000, seed=31)
    publish_file(pipeline_bootstrap, source, partitions=4)
    ledger = f"sqlite:///{tmp_path}/ledger.sqlite"
    group = f"spoc-test-{uuid.uuid4().hex[:8]}"
    workers = [worker(pipeline_bootstrap, ledger, tmp_path / f"worker{i}.log", group) for i in range(2)]
    with running(workers):
        wait_for_workers(pipeline_bootstrap, workers)
        for each in workers:  # the ledger URL (a password, in production) is not on the command line `ps` shows
            command_line = Path(f"/proc/{each.process.pid}/cmdline").read_bytes()
            assert b"spoc\x00worker" in command_line and ledger.encode() not in command_line
        # The first worker may have done it all before the second joined: wait for the rebalance.
        deadline = time.monotonic() + 90
        while not all(held := [set(w.positions()) for w in workers]) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert all(held), f"a worker got no partition: {held}"
        # Either worker answers for any customer: faust routes to the partition's holder.
        with duckdb.connect(str(run_replay(tmp_path, [source], name="lookup")[0]), read_only=True) as con:
            owners = con.execute("SELECT customer_id, owner_id FROM customer_owner ORDER BY customer_id LIMIT 20").fetchall()
        for customer_id, owner_id in owners:
            status, body = workers[0].get(f"/owners/{customer_id}")
            assert status == 200 and orjson.loads(body)["owner_id"] == owner_id
        for each in workers:
            each.terminate()
    _assert_live_equals_replay(tmp_path, pipeline_bootstrap, source)



def test_topics_carry_the_configs_the_project_sets(tmp_path: Path, pipeline_bootstrap: str) -> None:
    """Retention, message size and the owners changelog's compaction, as the broker reports them."""
    if not (os.environ.get("SPOC_TEST_BOOTSTRAP") or os.environ.get("SPOC_TEST_BROKER") == "apache"):
        pytest.skip("the embedded broker does not report topic configs; `make test-apache` runs this on Apache Kafka")
    group = f"spoc-test-{uuid.uuid4().hex[:8]}"
    with running([worker(pipeline_bootstrap, f"sqlite:///{tmp_path}/ledger.sqlite", tmp_path / "worker.log", group)]):
        changelog = f"{group}-owners-changelog"
        deadline = time.monotonic() + 60
        while changelog not in asyncio.run(partition_counts(pipeline_bootstrap, (changelog,))):
            assert time.monotonic() < deadline, "faust did not create the owners changelog"
            time.sleep(0.5)
        reported = asyncio.run(topic_configs(pipeline_bootstrap, changelog))
        assert reported["cleanup.policy"] == "compact"
        assert {name: reported[name] for name in OWNERS_CHANGELOG_CONFIGS} == OWNERS_CHANGELOG_CONFIGS
    for topic, expected in TOPIC_CONFIGS.items():
        if topic not in ALL_TOPICS:
            continue  # spoc notify's dead-letter topic: checked in test_notify
        reported = asyncio.run(topic_configs(pipeline_bootstrap, topic))
        assert {name: reported[name] for name in expected} == expected, topic
