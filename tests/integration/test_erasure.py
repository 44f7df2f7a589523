"""`customer_erased` on the live pipeline: afterwards every store the worker and the sink keep is
searched, byte for byte, for the customer's identifiers (SPEC §3 rule 5), and every topic is read:
the customer's facts on ``spoc.facts`` no longer open, and only the topics docs/security.md names
still hold the customer."""

from __future__ import annotations

import uuid
from pathlib import Path

import msgspec
import orjson

from benchmarks.workload import generate
from processors.kafka.topics import (
    FACTS,
    FOLLOW_UPS,
    HANDOFFS,
    OWNER_CHANGED,
    RELATIONSHIP_EVENTS,
    TOUCHPOINTS,
    TOUCHPOINTS_DLQ,
)
from schemas.facts import InputFactsV1
from tests.live import (
    opened_facts,
    project,
    publish_file,
    read_records,
    running,
    topic_names,
    wait_for_workers,
    worker,
)
from tests.replaying import rows

WHO = "erase-me-7c21e0"
CASE = f"{WHO}-case"


def _history(count: int) -> list[bytes]:
    return [
        orjson.dumps({
            "event_id": f"{WHO}-{i}", "occurred_at": f"2024-02-{1 + i:02d}T10:00:00+00:00", "customer_id": WHO,
            "channel": "phone", "direction": "inbound", "department": "billing", "employee_id": "e-erase-owner",
            "outcome": "resolved", "case_id": CASE,
        })
        for i in range(count)
    ]


def _bad_lines() -> list[bytes]:
    """Input the worker rejects that names the customer: a wrong field (keyed by the customer, so in the
    erasure's partition) and a line cut short after the id (no key: any partition)."""
    wrong = orjson.loads(_history(1)[0]) | {"event_id": f"{WHO}-bad", "channel": "pigeon"}
    return [orjson.dumps(wrong), b'{"event_id":"' + WHO.encode() + b'-cut","customer_id":"' + WHO.encode()]


def _readable_facts(bootstrap: str, ledger_url: str) -> list[InputFactsV1]:
    return [facts for _, readable in opened_facts(bootstrap, ledger_url) for facts in readable]


def _naming(facts: list[InputFactsV1], needle: str) -> list[InputFactsV1]:
    return [f for f in facts if needle.encode() in msgspec.json.encode(f)]


def _topics_naming(bootstrap: str, needle: bytes) -> set[str]:
    """The topics with a record whose key, value or a header holds ``needle``."""
    return {
        topic for topic in topic_names(bootstrap)
        if any(
            needle in (r.key or b"") or needle in (r.value or b"") or any(needle in value for _, value in r.headers)
            for r in read_records(bootstrap, topic)
        )
    }


def _holding(paths: list[Path], needle: bytes) -> list[str]:
    return [path.name for path in paths if path.exists() and needle in path.read_bytes()]


def test_an_erased_customer_is_in_no_store_of_the_worker_or_the_sink(tmp_path: Path, pipeline_bootstrap: str) -> None:
    history = tmp_path / "history.jsonl"
    history.write_bytes(b"\n".join([*generate(3_000, customers=300, seed=5), *_history(12), *_bad_lines()]) + b"\n")
    erasure = tmp_path / "erasure.jsonl"
    erasure.write_bytes(orjson.dumps({
        "type": "customer_erased", "event_id": f"{WHO}-erased", "occurred_at": "2024-06-01T00:00:00+00:00",
        "customer_id": WHO,
    }) + b"\n")
    db = tmp_path / "live.duckdb"
    ledger = tmp_path / "ledger.sqlite"
    ledger_url = f"sqlite:///{ledger}"
    group = f"spoc-test-{uuid.uuid4().hex[:8]}"

    def stores() -> list[Path]:
        return sorted(path for path in tmp_path.iterdir() if path.name.startswith((ledger.name, db.name)))

    publish_file(pipeline_bootstrap, history)
    with running([worker(pipeline_bootstrap, ledger_url, tmp_path / "worker.log", group)]) as [live]:
        wait_for_workers(pipeline_bootstrap, [live])
        project(pipeline_bootstrap, db, ledger_url)
        status, _ = live.get(f"/owners/{WHO}")
        assert status == 200
        found = _holding(stores(), WHO.encode())
        assert any(name.startswith(ledger.name) for name in found), "the search must find the customer first"
        assert {db.name, f"{db.name}.sink"} <= set(found) & set(_holding(stores(), CASE.encode()))
        # Sealed on spoc.facts: the bytes never name the customer, the parts opened with the keys do.
        assert FACTS not in _topics_naming(pipeline_bootstrap, WHO.encode())
        readable = _readable_facts(pipeline_bootstrap, ledger_url)
        assert len(_naming(readable, WHO)) >= 12 and _naming(readable, CASE), "the topic must hold the customer first"

        publish_file(pipeline_bootstrap, erasure)
        wait_for_workers(pipeline_bootstrap, [live])
        project(pipeline_bootstrap, db, ledger_url)

        # The worker is still running, its ledger store open: the store and its write-ahead log are searched.
        assert live.get(f"/owners/{WHO}")[0] == 404
        searched = stores()
        assert len(searched) >= 3, searched
        for needle in (WHO.encode(), CASE.encode()):
            assert _holding(searched, needle) == [], needle
    # The owners table's changelog ends the customer with a tombstone (compaction drops what came before).
    changelog = [r for r in read_records(pipeline_bootstrap, f"{group}-owners-changelog") if r.key == WHO.encode()]
    assert changelog and changelog[-1].value is None
    written = len(read_records(pipeline_bootstrap, f"{group}-owners-changelog"))
    # Two restarts that rebuild every partition from the input (no checkpoint): the erased customer's owner
    # is not written back, and owners that did not change are not written again.
    for restart in range(2):
        log = tmp_path / f"worker-restart{restart}.log"
        with running([worker(pipeline_bootstrap, ledger_url, log, group, "--checkpoint-seconds", "0")]) as [again]:
            wait_for_workers(pipeline_bootstrap, [again])
            assert again.get(f"/owners/{WHO}")[0] == 404
            assert again.terminate() == 0
        assert "partition state restored" in log.read_text()
    after = read_records(pipeline_bootstrap, f"{group}-owners-changelog")
    assert [r.value for r in after if r.key == WHO.encode()] == [r.value for r in changelog], "an erased owner came back"
    assert len(after) - written < written / 10, f"{len(after) - written} owners written again by restarts, of {written}"
    # Every topic read: the customer's facts no longer open; what names them outside the sealed parts is the
    # erasure itself (what a sink that is behind deletes them by).  The rest is docs/security.md's list.
    readable = _readable_facts(pipeline_bootstrap, ledger_url)
    assert [f.erasure.customer_id for f in _naming(readable, WHO) if f.erasure is not None] == [WHO]
    assert [f for f in _naming(readable, WHO) if f.erasure is None] == [] and _naming(readable, CASE) == []
    assert _topics_naming(pipeline_bootstrap, WHO.encode()) <= {
        TOUCHPOINTS, TOUCHPOINTS_DLQ, FACTS, RELATIONSHIP_EVENTS, OWNER_CHANGED, FOLLOW_UPS, HANDOFFS,
        f"{group}-owners-changelog",
    }
    assert _topics_naming(pipeline_bootstrap, CASE.encode()) <= {TOUCHPOINTS, TOUCHPOINTS_DLQ}
    # The rejected lines that named the customer are still counted, with their reasons.
    assert rows(db, "SELECT reason FROM rejected_events WHERE raw_text = '[erased]' ORDER BY reason") == [
        ("invalid_json",), ("unknown_enum_value",),
    ]
    # Everyone else is still there.
    assert rows(db, "SELECT count(DISTINCT customer_id) FROM touchpoints") == rows(db, "SELECT count(*) FROM customer_metrics")
    assert rows(db, "SELECT count(*) FROM touchpoints")[0][0] > 2_000
