"""The ledger store on real SQLite and PostgreSQL: positions recorded with the events."""

from __future__ import annotations

import multiprocessing
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Tracking

from ledger.errors import LedgerError
from ledger.keys import new_key
from ledger.policy import DEFAULT_POLICY, Policy
from ledger.records import Erasure, LedgerRecord, Position
from ledger.relationship import Relationship
from ledger.store import LedgerStore, persistence_env, redacted
from tests.integration.test_replay import STORY
from tests.replaying import run_replay, snapshot, write_jsonl
from tests.scenario import day


def _opened(customer: str, event_id: str, offset: int) -> LedgerRecord:
    relationship = Relationship.open(customer, event_id, day(0))
    [event] = relationship.collect_events()
    return LedgerRecord(customer, event, Position("topic:0", offset, offset))


def _store_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}" if kind == "sqlite" else request.getfixturevalue("postgres_url")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_position_is_written_once(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    store = LedgerStore(_store_url(kind, tmp_path, request))
    assert store.recorded_position("topic:0") is None
    # Decisions caused by offsets 1 and 2, stored with position 2.
    assert store.record([_opened("c1", "e1", 1), _opened("c2", "e2", 2)], "topic:0", 2) == 2
    assert store.recorded_position("topic:0") == 2
    # Re-processing offsets 1..2 after a crash writes nothing; offset 3 is new.
    assert store.record([_opened("c1", "e1", 1), _opened("c2", "e2", 2)], "topic:0", 2) == 0
    assert store.record([_opened("c1", "e1", 1), _opened("c3", "e3", 3)], "topic:0", 3) == 1
    assert store.recorded_position("topic:0") == 3
    store.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_store_keeps_the_first_policy_it_is_opened_with(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = _store_url(kind, tmp_path, request)
    store = LedgerStore(url)
    store.refuse_another_policy(DEFAULT_POLICY, "unused")
    store.close()
    reopened = LedgerStore(url)
    reopened.refuse_another_policy(DEFAULT_POLICY, "unused")
    with pytest.raises(LedgerError, match=r"another policy \(half_life_days 180\.0 → 90\.0\); the fix"):
        reopened.refuse_another_policy(Policy(half_life_days=90.0), "the fix")
    reopened.close()


def test_a_policy_recorded_with_integers_is_the_same_as_its_floats(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    store = LedgerStore(url)
    store.refuse_another_policy(Policy(repeat_window_days=3), "unused")
    store.close()
    reopened = LedgerStore(url)
    reopened.refuse_another_policy(Policy(repeat_window_days=3.0), "unused")
    with pytest.raises(LedgerError, match=r"repeat_window_days 3\.0 → 4\.0"):
        reopened.refuse_another_policy(Policy(repeat_window_days=4), "unused")
    reopened.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_database_itself_refuses_a_repeated_position(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    # FINDINGS.md: with POSTGRES_ENABLE_DB_FUNCTIONS=y PostgreSQL accepted a duplicate offset.
    # Our settings must leave the check to the database, on both stores.
    env = persistence_env(_store_url(kind, tmp_path, request))
    app = type("Probe", (Application,), {"construct_recorder": lambda self: self.factory.process_recorder()})(env=env)
    recorder = app.recorder
    first = Relationship.open("c1", "e1", day(0))
    app.events.put(first.collect_events(), tracking=Tracking("topic:0", 7))
    second = Relationship.open("c2", "e2", day(0))
    with pytest.raises(IntegrityError):
        app.events.put(second.collect_events(), tracking=Tracking("topic:0", 7))
    assert list(app.events.get(second.id)) == []
    assert recorder.max_tracking_id("topic:0") == 7
    app.close()


def test_replay_into_postgres_matches_sqlite_and_reruns_write_nothing(tmp_path: Path, postgres_url: str) -> None:
    story = write_jsonl(tmp_path / "story.jsonl", STORY)
    sqlite_db, _ = run_replay(tmp_path, [story], name="sqlite")
    from processors.batch.replay import replay

    summary = replay([str(story)], tmp_path / "pg.duckdb", postgres_url)
    assert summary.ledger_events_written > 0
    again = replay([str(story)], tmp_path / "pg.duckdb", postgres_url)
    assert again.ledger_events_written == 0
    assert snapshot(sqlite_db) == snapshot(tmp_path / "pg.duckdb")


def test_sqlite_urls_read_like_sqlalchemy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert persistence_env("sqlite:///data/ledger.sqlite")["SQLITE_DBNAME"] == "data/ledger.sqlite"
    assert persistence_env(f"sqlite:///{tmp_path}/abs.sqlite")["SQLITE_DBNAME"] == f"{tmp_path}/abs.sqlite"
    assert persistence_env("plain.sqlite")["SQLITE_DBNAME"] == "plain.sqlite"
    assert not (tmp_path / "data").exists()  # reading a URL changes nothing; opening the store makes its directory
    LedgerStore("sqlite:///data/ledger.sqlite").close()
    assert (tmp_path / "data" / "ledger.sqlite").is_file()


def _open_and_close(url: str, start: Any) -> str:
    start.wait()
    try:
        store = LedgerStore(url)
        store.refuse_another_policy(DEFAULT_POLICY, "unused")  # all record it at once: one wins, all agree
        store.close()
        return "opened"
    except LedgerError as error:
        return str(error)


def test_workers_creating_a_new_sqlite_store_at_the_same_moment_all_open_it(tmp_path: Path) -> None:
    """Found by the two-worker kill loop: the second worker's schema migration collided with the first's.
    Then each records its policy in the new store, also at once."""
    context = multiprocessing.get_context("fork")
    for attempt in range(8):
        url = f"sqlite:///{tmp_path}/ledger-{attempt}.sqlite"
        with context.Manager() as manager:
            start = manager.Barrier(4)
            with context.Pool(4) as pool:
                outcomes = pool.starmap(_open_and_close, [(url, start)] * 4)
        assert outcomes == ["opened"] * 4, outcomes


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_erasing_deletes_the_stored_events_of_the_relationship_only(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = _store_url(kind, tmp_path, request)
    who, other, source = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("erased", "kept", "topic"))
    gone, kept = _opened(who, "e1", 1), _opened(other, "e2", 2)
    store = LedgerStore(url)
    store.record([gone, kept], source, 2)
    store.erase([Erasure(who, gone.event.originator_id, Position(source, 3, 3))])
    store.close()
    reader = {"name": "spoc-ledger", "construct_recorder": lambda self: self.factory.process_recorder()}
    app = type("Reader", (Application,), reader)(env=persistence_env(url))
    assert list(app.events.get(gone.event.originator_id)) == []
    assert len(list(app.events.get(kept.event.originator_id))) == 1
    app.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_stretch_with_an_erasure_applied_again_after_a_crash_stays_erased(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A stretch's erasures are stored before its decisions and position: a crash between the two applies
    the stretch again, erasure included (recording first, a crash in between lost the erasure).  The
    customer's decisions before the erasure are not stored; those after it (they came back) are."""
    url = _store_url(kind, tmp_path, request)
    who, other, source = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("erased", "kept", "topic"))
    before, kept, back = _opened(who, "e1", 1), _opened(other, "e3", 3), _opened(who, "e4", 4)
    erasure = Erasure(who, before.event.originator_id, Position(source, 2, 2))
    store = LedgerStore(url)
    store.erase([erasure])  # where the crash left the stretch: erased, nothing recorded
    assert store.recorded_position(source) is None
    assert store.apply([before, kept, back], [erasure], source, 4) == 2
    assert store.apply([before, kept, back], [erasure], source, 4) == 0  # delivered again: a no-op
    assert store.recorded_position(source) == 4
    store.close()
    reader = {"name": "spoc-ledger", "construct_recorder": lambda self: self.factory.process_recorder()}
    app = type("Reader", (Application,), reader)(env=persistence_env(url))
    assert list(app.events.get(before.event.originator_id)) == []
    assert len(list(app.events.get(back.event.originator_id))) == 1  # the relationship they came back to
    assert len(list(app.events.get(kept.event.originator_id))) == 1
    app.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_an_erasure_deletes_the_customers_keys_up_to_it_and_no_others(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = _store_url(kind, tmp_path, request)
    who, other, source = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("erased", "kept", "topic"))
    before, back, kept, elsewhere = (
        new_key(who, source, 1), new_key(who, source, 5), new_key(other, source, 2), new_key(who, f"{source}-b", 9)
    )
    store = LedgerStore(url)
    store.add_customer_keys([before, back, kept, elsewhere])
    store.add_customer_keys([before])  # stored again (a retried stretch): no change
    assert sorted(store.customer_keys([who, other]), key=lambda k: k.key_id) == sorted(
        [before, back, kept, elsewhere], key=lambda k: k.key_id
    )
    assert store.keys_by_id([before.key_id, kept.key_id, "no-such-key"]) == {before.key_id: before.key, kept.key_id: kept.key}
    store.apply([], [Erasure(who, None, Position(source, 3, 3))], source, 3)
    store.close()
    reopened = LedgerStore(url)
    # Before the erasure and from another source: gone.  After it (the customer came back), and another's: kept.
    assert {k.key_id for k in reopened.customer_keys([who, other])} == {back.key_id, kept.key_id}
    assert reopened.keys_by_id([before.key_id, elsewhere.key_id]) == {}
    reopened.close()


def test_a_password_comes_from_the_url_a_variable_or_a_file_and_is_never_shown(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a PostgreSQL server that checks passwords (scripts/test-postgres: scram-sha-256 over TCP)."""
    password = urlparse(postgres_url).password
    assert password, "the test server must ask for a password"
    bare = postgres_url.replace(f":{password}@", "@")
    wrong = postgres_url.replace(f":{password}@", ":not-the-password-123@")
    for url in (postgres_url, wrong, bare):
        assert password not in redacted(url) and "not-the-password-123" not in redacted(url)
    assert redacted(postgres_url) == postgres_url.replace(password, "***")
    LedgerStore(postgres_url).close()
    with pytest.raises(LedgerError) as refused:
        LedgerStore(wrong)
    assert "password authentication failed" in str(refused.value) and "SPOC_LEDGER_PASSWORD" in str(refused.value) and "not-the-password-123" not in str(refused.value)
    assert "***" in str(refused.value)
    with pytest.raises(LedgerError):
        LedgerStore(bare)  # no password anywhere
    monkeypatch.setenv("SPOC_LEDGER_PASSWORD", password)
    LedgerStore(bare).close()
    monkeypatch.delenv("SPOC_LEDGER_PASSWORD")
    secret = tmp_path / "ledger-password"
    secret.write_text(password + "\n")  # as a mounted secret usually ends
    monkeypatch.setenv("SPOC_LEDGER_PASSWORD_FILE", str(secret))
    LedgerStore(bare).close()
    monkeypatch.setenv("SPOC_LEDGER_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(LedgerError, match=r"cannot read the ledger password from \$SPOC_LEDGER_PASSWORD_FILE"):
        LedgerStore(bare)
    with pytest.raises(LedgerError) as unsupported:
        persistence_env(postgres_url.replace("postgresql", "mysql"))
    assert password not in str(unsupported.value)
