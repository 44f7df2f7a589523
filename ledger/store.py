"""The ledger store: the Relationship aggregates' events, persisted with eventsourcing.

The application layer around the pure core (the only module of ``ledger`` that
does I/O).  SQLite by default, PostgreSQL when the URL says so.  Each write
records the input position that caused it (``Tracking``) in the same transaction,
so writing the same position twice is refused and re-running an input writes
nothing new.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from uuid import UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    OperationalError,
    ProcessRecorder,
    Tracking,
)
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_fixed

from ledger.errors import LedgerError
from ledger.keys import CustomerKey
from ledger.policy import Policy
from ledger.records import Erasure, LedgerRecord
from ledger.relationship import NAMESPACE

LEDGER_URL_ENV = "SPOC_LEDGER_URL"
LEDGER_PASSWORD_ENV = "SPOC_LEDGER_PASSWORD"
LEDGER_PASSWORD_FILE_ENV = "SPOC_LEDGER_PASSWORD_FILE"
HIDDEN = "***"


def redacted(url: str) -> str:
    """``url`` as it may be shown: its password, if it has one, replaced by ``***``."""
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    user = f"{parsed.username}:" if parsed.username is not None else ":"
    return parsed._replace(netloc=f"{user}{HIDDEN}@{parsed.netloc.rpartition('@')[2]}").geturl()


def _password(parsed_password: str | None) -> str:
    """The URL's password, else ``$SPOC_LEDGER_PASSWORD``, else the file ``$SPOC_LEDGER_PASSWORD_FILE`` names
    (a mounted secret: its content up to the first line break), else none."""
    if parsed_password is not None:
        return unquote(parsed_password)
    if os.environ.get(LEDGER_PASSWORD_ENV):
        return os.environ[LEDGER_PASSWORD_ENV]
    path = os.environ.get(LEDGER_PASSWORD_FILE_ENV)
    if not path:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()[0] if Path(path).stat().st_size else ""
    except OSError as error:
        raise LedgerError(f"cannot read the ledger password from ${LEDGER_PASSWORD_FILE_ENV} ({path}): {error.strerror}") from None


def persistence_env(url: str) -> dict[str, str]:
    """Map a ledger URL onto eventsourcing's persistence settings.

    ``sqlite:///relative/ledger.sqlite``, ``sqlite:////absolute/ledger.sqlite`` (or a bare path),
    or ``postgresql://user:pw@host:port/db`` (without ``:pw``, the password comes from
    ``$SPOC_LEDGER_PASSWORD`` or the file ``$SPOC_LEDGER_PASSWORD_FILE`` names).  Messages show
    the URL :func:`redacted`.
    """
    parsed = urlparse(url)
    if parsed.scheme in ("postgres", "postgresql"):
        if not parsed.path.strip("/"):
            raise LedgerError(
                f"ledger URL {redacted(url)!r} names no database; use postgresql://user:password@host:port/dbname"
            )
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parsed.path.lstrip("/"),
            "POSTGRES_HOST": parsed.hostname or "localhost",
            "POSTGRES_PORT": str(parsed.port or 5432),
            "POSTGRES_USER": unquote(parsed.username or ""),
            "POSTGRES_PASSWORD": _password(parsed.password),
            # Keep off: with DB functions the process recorder ignores tracking (FINDINGS.md).
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        }
    if parsed.scheme in ("sqlite", ""):
        # As in SQLAlchemy: sqlite:///relative/path, sqlite:////absolute/path.
        path = url if parsed.scheme == "" else parsed.netloc + parsed.path if parsed.netloc else parsed.path[1:]
        if not path:
            raise LedgerError(f"ledger URL {redacted(url)!r} names no file; use sqlite:///path/to/ledger.sqlite")
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path}
    raise LedgerError(
        f"unsupported ledger URL {redacted(url)!r}; use sqlite:///path/ledger.sqlite or postgresql://user:pw@host/db"
    )


def default_ledger_url(analytics_path: str | Path, *, separate: bool = False) -> str:
    """``$SPOC_LEDGER_URL``, else a SQLite file next to the analytics file.

    ``separate``: always next to it (a what-if policy run must not write into the real ledger).
    """
    env = None if separate else os.environ.get(LEDGER_URL_ENV)
    return env or f"sqlite:///{Path(analytics_path)}.ledger.sqlite"


class PolicyRecord(Aggregate):
    """The policy every decision in a ledger store was made under: one per store, never changed.

    Stamped with the Unix epoch, not the time it was written, so that every store built from
    the same input under the same policy holds the same bytes (live and replay are compared so).
    """

    ID = uuid5(NAMESPACE, "spoc-ledger-policy")

    class Recorded(Aggregate.Created):
        settings: dict[str, Any]

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings

    @classmethod
    def of(cls, policy: Policy) -> PolicyRecord:
        return cls._create(cls.Recorded, id=cls.ID, settings=policy.as_dict(), timestamp=datetime(1970, 1, 1, tzinfo=UTC))


@dataclass(frozen=True)
class StoredCheckpoint:
    """A partition's state after the input up to ``last_offset``, as snapshot bytes."""

    source: str
    last_offset: int
    code: str
    """The code that wrote it (a fingerprint): another's is not restored."""
    sha256: str
    state: bytes


class _LedgerApplication(Application[UUID]):
    name = "spoc-ledger"

    def construct_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()


@retry(
    retry=retry_if_exception_type((IntegrityError, OperationalError, sqlite3.OperationalError)),
    stop=stop_after_attempt(5), wait=wait_fixed(0.2), reraise=True,
)
def _application(env: dict[str, str]) -> _LedgerApplication:
    """Open (and on first use create) the store.  Workers creating a new SQLite store at once
    collide: on the schema migration's record, or on switching the file to WAL mode ("database
    is locked" at once, whatever the busy timeout); the loser succeeds when it tries again."""
    return _LedgerApplication(env=env)


def _check_connection(env: dict[str, str], shown_url: str) -> None:
    """Connect once before eventsourcing's pool does: the pool retries a refused password for its
    whole timeout (30 s) and then reports only "couldn't get a connection"; the driver says why."""
    try:
        import psycopg
    except ImportError as error:
        raise LedgerError(f"{error}; install the PostgreSQL driver with `pip install -e .[postgres]`") from None
    password = env["POSTGRES_PASSWORD"]
    try:
        psycopg.connect(
            dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"], password=password, connect_timeout=10,
        ).close()
    except psycopg.Error as error:
        said = str(error).replace(password, HIDDEN) if password else str(error)
        fix = (f"; give the password in the URL, ${LEDGER_PASSWORD_ENV} or ${LEDGER_PASSWORD_FILE_ENV}"
               if "password" in said else "")
        raise LedgerError(f"cannot connect to the ledger store {shown_url!r}: {said.strip()}{fix}") from None


class LedgerStore:
    """Where the relationship ledger lives, keyed by input position."""

    def __init__(self, url: str) -> None:
        self.url = redacted(url)  # for messages
        env = persistence_env(url)
        if env["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
            _check_connection(env, self.url)
        else:
            Path(env["SQLITE_DBNAME"]).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._app = _application(env)
        except ImportError as error:
            raise LedgerError(f"{error}; install the PostgreSQL driver with `pip install -e .[postgres]`") from None
        except Exception as error:  # the driver's connection errors have no common base
            password = env.get("POSTGRES_PASSWORD")
            said = str(error).replace(password, HIDDEN) if password else str(error)
            raise LedgerError(f"cannot open ledger store {self.url!r}: {said}") from None
        self._recorder: ProcessRecorder = self._app.recorder  # type: ignore[assignment]  # construct_recorder made it

    def close(self) -> None:
        self._app.close()

    def refuse_another_policy(self, policy: Policy, fix: str) -> None:
        """Record ``policy`` in a store that has none; raise, saying ``fix``, if it holds another.

        A store's decisions follow one policy: decisions made under two could not be explained
        by either, and a replay would not reproduce them.  (A store from before policies were
        recorded takes the first one it is opened with.)
        """
        recorded = self._recorded_policy()
        if recorded is None:
            try:
                self._app.save(PolicyRecord.of(policy))
                return
            except IntegrityError:  # another worker recorded one first
                recorded = self._recorded_policy()
        assert recorded is not None
        changes = policy.changes_from(recorded.settings)
        if changes:
            raise LedgerError(f"the ledger store {self.url} holds decisions made under another policy ({', '.join(changes)}); {fix}")

    def _recorded_policy(self) -> PolicyRecord | None:
        try:
            return self._app.repository.get(PolicyRecord.ID)
        except AggregateNotFoundError:
            return None

    def recorded_position(self, source: str) -> int | None:
        """The last input position of ``source`` whose effects are stored."""
        return self._recorder.max_tracking_id(source)

    def record(self, records: Sequence[LedgerRecord], source: str, offset: int) -> int:
        """Store the decisions caused by ``source`` up to ``offset``, atomically with the position.

        Records at or before the stored position are skipped; returns how many were written.
        """
        done = self.recorded_position(source)
        new = [r.event for r in records if done is None or r.position.offset > done]
        if done is not None and offset <= done:
            return 0
        try:
            self._app.events.put(new, tracking=Tracking(source, offset))
        except IntegrityError as error:
            raise LedgerError(
                f"the ledger store {self.url} already holds a different history for these customers "
                f"({error}); replay into a fresh ledger store (--ledger) or the same inputs in the same order"
            ) from None
        return len(new)

    def apply(self, records: Sequence[LedgerRecord], erasures: Sequence[Erasure], source: str, offset: int) -> int:
        """Store what ``source`` up to ``offset`` decided: its erasures, then its decisions with the position.

        Erasures go first because deleting is idempotent: a crash between the two leaves the position
        where it was, and the stretch is applied again, erasures included (recording first and erasing
        after would lose an erasure to a crash in between).  Decisions that an erasure in the same
        stretch removes are not stored.  Returns how many events were written.
        """
        done = self.recorded_position(source)
        if done is not None and offset <= done:
            return 0
        fresh = [e for e in erasures if done is None or e.position.offset > done]
        self.erase(fresh)
        erased_at: dict[UUID, int] = {}
        for erasure in fresh:
            if erasure.relationship_id is not None:
                erased_at[erasure.relationship_id] = max(erasure.position.seq, erased_at.get(erasure.relationship_id, -1))
        kept = [r for r in records if r.position.seq > erased_at.get(r.event.originator_id, -1)]
        return self.record(kept, source, offset)

    # Checkpoints of the live worker's partition states (processors/live/checkpoints.py): kept here,
    # where every worker of a group reaches them, so that whichever takes a partition over restores it.

    def save_checkpoint(self, checkpoint: StoredCheckpoint, *, keep: int) -> None:
        """Store a checkpoint; then keep only the ``keep`` newest of its source (the older ones are deleted,
        on SQLite with their bytes overwritten: a checkpoint after an erasure keeps 1)."""
        with self._checkpoint_transaction() as (cursor, mark, sqlite):
            cursor.execute(
                f"INSERT INTO spoc_checkpoints (source, last_offset, code, sha256, state) VALUES ({mark}, {mark}, {mark}, {mark}, {mark}) "
                "ON CONFLICT (source, last_offset) DO NOTHING",
                (checkpoint.source, checkpoint.last_offset, checkpoint.code, checkpoint.sha256, checkpoint.state),
            )
            if sqlite:
                cursor.execute("PRAGMA secure_delete = ON")
            cursor.execute(
                f"DELETE FROM spoc_checkpoints WHERE source = {mark} AND last_offset NOT IN "
                f"(SELECT last_offset FROM spoc_checkpoints WHERE source = {mark} ORDER BY last_offset DESC LIMIT {int(keep)})",
                (checkpoint.source, checkpoint.source),
            )

    def checkpoints(self, source: str) -> list[StoredCheckpoint]:
        """The checkpoints of ``source``, newest first."""
        with self._checkpoint_transaction() as (cursor, mark, _):
            cursor.execute(
                f"SELECT source, last_offset, code, sha256, state FROM spoc_checkpoints WHERE source = {mark} "
                "ORDER BY last_offset DESC",
                (source,),
            )
            return [
                StoredCheckpoint(row["source"], row["last_offset"], row["code"], row["sha256"], bytes(row["state"]))
                for row in cursor.fetchall()
            ]

    def checkpoint_offsets(self, source: str) -> list[tuple[int, str]]:
        """``(last_offset, code)`` of each checkpoint of ``source``, newest first, without their states."""
        with self._checkpoint_transaction() as (cursor, mark, _):
            cursor.execute(
                f"SELECT last_offset, code FROM spoc_checkpoints WHERE source = {mark} ORDER BY last_offset DESC", (source,)
            )
            return [(row["last_offset"], row["code"]) for row in cursor.fetchall()]

    @contextmanager
    def _checkpoint_transaction(self) -> Iterator[tuple[Any, str, bool]]:
        with self._side_transaction(
            "spoc_checkpoints", "source TEXT NOT NULL, last_offset BIGINT NOT NULL, code TEXT NOT NULL, "
            "sha256 TEXT NOT NULL, state {blob} NOT NULL, PRIMARY KEY (source, last_offset)",
        ) as transaction:
            yield transaction

    @contextmanager
    def _keys_transaction(self, *, commit: bool = True) -> Iterator[tuple[Any, str, bool]]:
        with self._side_transaction(
            "spoc_customer_keys", "key_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, key {blob} NOT NULL, "
            "source TEXT NOT NULL, from_offset BIGINT NOT NULL",
            commit=commit,
            index="CREATE INDEX IF NOT EXISTS spoc_customer_keys_by_customer ON spoc_customer_keys (customer_id)",
        ) as transaction:
            yield transaction

    @contextmanager
    def _side_transaction(
        self, table: str, columns: str, *, commit: bool = True, index: str | None = None
    ) -> Iterator[tuple[Any, str, bool]]:
        """A cursor in a transaction on one of the project's own tables (created on first use, ``{blob}``
        in ``columns`` naming the driver's bytes type), the driver's parameter mark, and whether it is
        SQLite.  ``commit=False``: a reader's, rolled back (a table it had to create is empty anyway)."""
        recorder: Any = self._recorder
        sqlite = not type(recorder).__module__.endswith("postgres")
        blob = "BLOB" if sqlite else "BYTEA"
        with recorder.datastore.transaction(commit=commit) as cursor:
            if not sqlite:
                cursor.execute(f'SET LOCAL search_path TO "{recorder.datastore.schema}"')
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns.format(blob=blob)})")
            if index is not None:
                cursor.execute(index)
            yield cursor, "?" if sqlite else "%s", sqlite

    # Customers' keys (ledger/keys.py): the worker seals each customer's facts with them; an erasure deletes them.

    def identity(self, *, create: bool) -> str | None:
        """This store's random identity (made on first use when ``create``): the worker names it on the facts
        it seals, so that a sink given another store says so instead of finding none of the keys."""
        with self._side_transaction(
            "spoc_store_identity", "one INTEGER PRIMARY KEY, id TEXT NOT NULL", commit=create,
        ) as (cursor, mark, _):
            if create:  # workers starting together: the first one's stays
                cursor.execute(
                    f"INSERT INTO spoc_store_identity (one, id) VALUES (1, {mark}) ON CONFLICT (one) DO NOTHING", (uuid4().hex,)
                )
            cursor.execute("SELECT id FROM spoc_store_identity")
            row = cursor.fetchone()
            return None if row is None else str(row["id"])

    def customer_keys(self, customer_ids: Iterable[str]) -> list[CustomerKey]:
        """The stored keys of these customers."""
        wanted = sorted(set(customer_ids))
        found: list[CustomerKey] = []
        with self._keys_transaction(commit=False) as (cursor, mark, _):
            for chunk in _chunks(wanted):
                cursor.execute(
                    "SELECT key_id, customer_id, key, source, from_offset FROM spoc_customer_keys "
                    f"WHERE customer_id IN ({', '.join([mark] * len(chunk))})",
                    chunk,
                )
                found.extend(_customer_key(row) for row in cursor.fetchall())
        return found

    def add_customer_keys(self, keys: Sequence[CustomerKey]) -> None:
        """Store new keys (durably, before anything they seal is published)."""
        if not keys:
            return
        with self._keys_transaction() as (cursor, mark, _):
            cursor.executemany(
                f"INSERT INTO spoc_customer_keys (key_id, customer_id, key, source, from_offset) "
                f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark}) ON CONFLICT (key_id) DO NOTHING",
                [(k.key_id, k.customer_id, k.key, k.source, k.from_offset) for k in keys],
            )

    def keys_by_id(self, key_ids: Iterable[str]) -> dict[str, bytes]:
        """The keys still stored among ``key_ids`` (an erased customer's are not)."""
        wanted = sorted(set(key_ids))
        found: dict[str, bytes] = {}
        with self._keys_transaction(commit=False) as (cursor, mark, _):
            for chunk in _chunks(wanted):
                cursor.execute(
                    f"SELECT key_id, key FROM spoc_customer_keys WHERE key_id IN ({', '.join([mark] * len(chunk))})",
                    chunk,
                )
                found.update((row["key_id"], bytes(row["key"])) for row in cursor.fetchall())
        return found

    def _erase_keys(self, erasures: Sequence[Erasure]) -> None:
        """Delete each erased customer's keys up to the erasure (a key from after it seals the customer's
        facts since they came back); on SQLite with their bytes overwritten."""
        if not erasures:
            return
        with self._keys_transaction() as (cursor, mark, sqlite):
            if sqlite:
                cursor.execute("PRAGMA secure_delete = ON")
            for erasure in erasures:
                position = erasure.position
                cursor.execute(
                    f"DELETE FROM spoc_customer_keys WHERE customer_id = {mark} AND (source <> {mark} OR from_offset <= {mark})",
                    (erasure.customer_id, position.source, position.offset),
                )
        self._fold_sqlite_log()

    def erase(self, erasures: Sequence[Erasure]) -> None:
        """Delete the stored events of erased relationships (SPEC §3 rule 5), and the customers' keys.

        On SQLite no byte of them is left in the file or its write-ahead log.  PostgreSQL keeps
        deleted rows' bytes in its pages until VACUUM reuses the space (docs/reliability.md).
        """
        self._erase_keys(erasures)
        ids = [e.relationship_id for e in erasures if e.relationship_id is not None]
        if not ids:
            return
        recorder: Any = self._recorder
        if type(recorder).__module__.endswith("postgres"):
            _delete_postgres(recorder, ids)
        else:
            _delete_sqlite(recorder, ids)
            self._fold_sqlite_log()

    def _fold_sqlite_log(self) -> None:
        """On SQLite, the write-ahead log still holds deleted pages as they were before: fold it in and empty it."""
        recorder: Any = self._recorder
        if type(recorder).__module__.endswith("postgres"):
            return
        with recorder.datastore.get_connection(commit=True) as connection:
            connection.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _chunks(values: list[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _customer_key(row: Any) -> CustomerKey:
    return CustomerKey(row["key_id"], row["customer_id"], bytes(row["key"]), row["source"], row["from_offset"])


def _delete_postgres(recorder: Any, ids: list[UUID]) -> None:
    from psycopg.sql import SQL, Identifier

    statement = SQL("DELETE FROM {schema}.{table} WHERE originator_id = %s").format(
        schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name),
    )
    with recorder.datastore.transaction(commit=True) as cursor:
        for relationship_id in ids:
            cursor.execute(statement, (relationship_id,))


def _delete_sqlite(recorder: Any, ids: list[UUID]) -> None:
    table = recorder.events_table_name.replace('"', '""')
    with recorder.datastore.transaction(commit=True) as cursor:
        # Overwrite the deleted rows with zeros: builds of SQLite without SECURE_DELETE leave them in free pages.
        cursor.execute("PRAGMA secure_delete = ON")
        for relationship_id in ids:
            cursor.execute(f'DELETE FROM "{table}" WHERE originator_id = ?', (relationship_id.hex,))
