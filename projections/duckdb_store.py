"""The analysts' DuckDB file: fact tables written in bulk, SPEC §7 views over them."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import orjson

from ledger.errors import TerminalError
from ledger.followups import FollowUpFact
from ledger.intake import Batch, RejectedInput
from ledger.policy import Policy
from ledger.records import ControlFact, LedgerRecord, TouchFact
from ledger.relationship import describe
from schemas.events import event_type

FACT_TABLES = (
    "touchpoints", "rejected_events", "handoff_facts", "repeat_facts", "ledger_events", "control_events",
    "follow_up_facts",
)
# Tables whose rows belong to one customer and go when the customer is erased.
CUSTOMER_TABLES = (
    "touchpoints", "handoff_facts", "repeat_facts", "ledger_events", "control_events", "follow_up_facts",
)
ERASED = "[erased]"
"""What is left of a rejected line that named an erased customer."""
VIEWS = (
    "owner_history", "customer_owner", "journeys", "handoffs", "repeat_contacts", "customer_metrics",
    "churn_by_continuity", "churn_by_handoffs", "silo_paths", "owner_load", "follow_ups", "follow_up_compliance",
    "journey_outcomes", "churn_after_journeys", "continuity_survival", "help_first", "journey_effort",
    "owner_change_outcomes",
)
SPEC_TABLES = ("touchpoints", "rejected_events", *VIEWS)
"""What SPEC §7 names: all an analyst needs. The rest is internal (``INTERNAL_SCHEMA`` in a reader)."""
INTERNAL_SCHEMA = "spoc_internal"


def _sql(name: str) -> str:
    return (Path(__file__).parent / name).read_text()


def views_sql() -> str:
    """The SPEC §7 views, over tables named as in tables.sql."""
    return _sql("views.sql")


_attributes_json = msgspec.json.Encoder()


def touch_row(fact: TouchFact) -> tuple[Any, ...]:
    t = fact.touch
    p = fact.position
    return (
        t.event_id, t.occurred_at, t.customer_id, t.schema_version, t.channel,
        t.direction, t.department, t.employee_id, t.case_id, t.topic, t.kind, t.outcome,
        t.transferred_to_department, t.transferred_to_employee, t.csat, t.sentiment, t.revenue,
        # msgspec writes back whatever it read (orjson refuses integers beyond 64 bits).
        _attributes_json.encode(t.attributes).decode() if t.attributes is not None else None,
        fact.journey_id, fact.journey_key, fact.weight, fact.owner_before, fact.owner_match,
        p.source, p.offset, p.seq, t.context_passed,
    )


def handoff_row(fact: TouchFact) -> tuple[Any, ...]:
    h = fact.handoff
    assert h is not None
    return (
        fact.touch.customer_id, h.journey_id, h.from_event_id, h.to_event_id, h.from_department,
        h.to_department, h.from_employee_id, h.to_employee_id, h.kind, h.cross_department,
        h.reexplained, h.ping_pong, h.gap_seconds, fact.touch.occurred_at, fact.position.seq,
    )


def repeat_row(fact: TouchFact) -> tuple[Any, ...]:
    r = fact.repeat
    assert r is not None
    return (
        fact.touch.event_id, r.previous_event_id, fact.touch.customer_id, fact.journey_key,
        r.gap_seconds, fact.touch.occurred_at, fact.position.seq,
    )


def ledger_row(record: LedgerRecord) -> tuple[Any, ...]:
    event = record.event
    payload = describe(event)
    affinities = payload.get("affinities")
    p = record.position
    return (
        str(event.originator_id), event.originator_version, record.customer_id, type(event).__name__,
        event.timestamp, payload.get("trigger_event_id"), payload.get("previous_owner_id"),
        payload.get("owner_id"), payload.get("employee_id"), payload.get("reason"),
        orjson.dumps(affinities).decode() if affinities is not None else None,
        p.source, p.offset, p.seq,
    )


def control_row(fact: ControlFact) -> tuple[Any, ...]:
    e = fact.event
    p = fact.position
    return (
        e.event_id, event_type(e), e.occurred_at, getattr(e, "customer_id", None),
        getattr(e, "employee_id", None), p.source, p.offset, p.seq, getattr(e, "until", None),
    )


def follow_up_row(fact: FollowUpFact) -> tuple[Any, ...]:
    f = fact.follow_up
    return (
        f.follow_up_id, fact.customer_id, f.owner_id, f.kind, f.anchor_event_id, f.journey_id, f.due_at,
        fact.status, fact.closed_at, fact.closed_event_id, fact.position.seq, fact.step,
    )


def rejected_row(rejected: RejectedInput) -> tuple[Any, ...]:
    rejection, raw, position = rejected.rejection, rejected.raw, rejected.position
    return (
        rejection.reason, rejection.detail, rejection.field, raw, raw.decode("utf-8", "replace"),
        position.source, position.offset, position.seq,
    )


def quoted(path: str | Path) -> str:
    """A file path inside an SQL string literal (ATTACH takes no parameters)."""
    return str(path).replace("'", "''")


def compact(path: Path, before_replace: Callable[[], None] | None = None) -> None:
    """Rewrite an analytics file into a fresh one and put it in its place.

    DuckDB leaves deleted rows, and tables dropped by a rebuild, in the file's free
    blocks; after an erasure not one byte of the customer may stay there.  No other
    connection may hold the file open for writing.
    """
    fresh = path.with_name(f".{path.name}.{os.getpid()}{COMPACT_SUFFIX}")
    fresh.unlink(missing_ok=True)
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{quoted(path)}' AS old (READ_ONLY)")
        con.execute(f"ATTACH '{quoted(fresh)}' AS new")
        con.execute("COPY FROM DATABASE old TO new")
    if before_replace is not None:
        before_replace()  # a crash test's kill point: the copy made, not yet in place
    os.replace(fresh, path)


COMPACT_SUFFIX = ".compact"
COPY_SUFFIX = ".tmp"


def remove_stale_copies(path: Path) -> list[Path]:
    """Delete the half-made copies of ``path`` that a killed process left (a compaction's or a
    snapshot's, ``.<name>.<pid>.compact`` / ``.tmp``): they may hold an erased customer's rows.
    Only the process that holds ``path`` open for writing may call this: no copy is being made."""
    stale = [
        found for found in path.parent.glob(f".{glob.escape(path.name)}.*")
        if found.name.endswith((COMPACT_SUFFIX, COPY_SUFFIX)) and found.name.removeprefix(f".{path.name}.").split(".")[0].isdigit()
    ]
    for found in stale:
        found.unlink(missing_ok=True)
    return stale


class AnalyticsFileError(TerminalError):
    """The analysts' DuckDB file cannot be opened for writing."""


def _open_failure(path: Path, error: duckdb.IOException) -> str:
    """What to do about a DuckDB file that would not open, with DuckDB's own words."""
    if "lock" in str(error):
        return (
            f"{path} is open for writing in another process (a `spoc replay` or `spoc project` still running?); "
            f"stop it or give another --db. DuckDB: {error}"
        )
    if "not a valid DuckDB database file" in str(error):
        return f"{path} is not a DuckDB file; give a new path or a file spoc wrote. DuckDB: {error}"
    return f"cannot open {path}: {error}"


class AnalyticsStore:
    """A DuckDB file holding the fact tables and the SPEC §7 views.

    DuckDB allows one writer process per file; analysts read it when no writer
    holds it (or from a copy).
    """

    def __init__(self, path: str | Path, memory_limit: str | None = None) -> None:
        """``memory_limit`` caps DuckDB's buffers (e.g. ``64MB``); unlimited, DuckDB keeps every block it wrote.

        A missing directory is created, as the ledger store's is.
        """
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.con = duckdb.connect(str(self.path))
        except OSError as error:
            raise AnalyticsFileError(
                f"cannot create {self.path}: {error.strerror}; give a --db in a directory you can write"
            ) from None
        except duckdb.IOException as error:
            raise AnalyticsFileError(_open_failure(self.path, error)) from None
        self.con.execute("SET TimeZone = 'UTC'")
        if memory_limit is not None:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")

    def close(self) -> None:
        self.con.close()

    def create_schema(self, *, replace: bool) -> None:
        if replace:
            for view in VIEWS:
                self.con.execute(f"DROP VIEW IF EXISTS {view}")
            for helper in ("customer_churn_buckets", "spoc_window"):
                self.con.execute(f"DROP VIEW IF EXISTS {helper}")
            self.con.execute("DROP MACRO TABLE IF EXISTS churn_by_bucket")
            for macro in ("wilson_low", "wilson_high"):
                self.con.execute(f"DROP MACRO IF EXISTS {macro}")
            for table in (*FACT_TABLES, "spoc_settings"):
                self.con.execute(f"DROP TABLE IF EXISTS {table}")
        self.con.execute(_sql("tables.sql"))
        self.con.execute(views_sql())

    def policy_changes(self, policy: Policy) -> list[str]:
        """How ``policy`` differs from the one this file was last built with (``key old → new``)."""
        try:
            recorded = dict(self.con.execute("SELECT key, value FROM spoc_settings").fetchall())
        except duckdb.CatalogException:
            return []
        if not recorded.keys() & set(Policy.__struct_fields__):
            return []  # no policy recorded yet (a sink before the worker's first facts)
        return policy.changes_from(recorded)

    def refuse_another_policy(self, policy: Policy, fix: str, shown_as: Path | None = None) -> None:
        """Close and raise if this file was built with another policy than ``policy``, saying ``fix``.

        Its rows (and the ledger store beside it) hold that policy's decisions; mixing two in one file
        would make its tables answer for neither.
        """
        changes = self.policy_changes(policy)
        if changes:
            self.close()
            raise TerminalError(f"{shown_as or self.path} was built with another policy ({', '.join(changes)}); {fix}")

    def write_settings(self, policy: Policy | None, **values: str | None) -> None:
        """Record ``values`` and ``policy``'s numbers (None: not known yet, the views use the SPEC's)."""
        settings: dict[str, str | None] = {} if policy is None else dict(policy.as_recorded())
        settings.update(values)
        for key, value in settings.items():
            self.con.execute(
                "INSERT INTO spoc_settings VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )

    def append(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            appender = self.con.appender(table)
            appender.append_rows(rows)
            appender.flush()

    def write_batch(self, batch: Batch) -> None:
        touches = batch.touches
        self.append("touchpoints", [touch_row(f) for f in touches])
        self.append("handoff_facts", [handoff_row(f) for f in touches if f.handoff is not None])
        self.append("repeat_facts", [repeat_row(f) for f in touches if f.repeat is not None])
        self.append("control_events", [control_row(f) for f in batch.controls])
        self.append("ledger_events", [ledger_row(r) for r in batch.records])
        self.append("rejected_events", [rejected_row(r) for r in batch.rejected])
        self.append("follow_up_facts", [follow_up_row(f) for f in batch.follow_ups])
        for erasure in batch.erasures:
            self.erase(erasure.customer_id, erasure.position.source, erasure.position.seq)

    def absorb(self, part: Path, alias: str) -> None:
        """Copy every fact row of another analytics file (a replay partition) into this one.

        The part stays attached until this connection closes: DuckDB cannot detach
        a database that the open transaction has read.  Rows land in no particular
        order, which lets DuckDB insert on every core (1M touchpoints' parts: 1.76 s
        in order, ~1.1 s so); parts appended one after the other were not in input
        order either.
        """
        self.con.execute("SET preserve_insertion_order = false")
        self.con.execute(f"ATTACH '{quoted(part)}' AS {alias} (READ_ONLY)")
        for table in FACT_TABLES:
            self.con.execute(f"INSERT INTO {table} SELECT * FROM {alias}.{table}")

    def erase(self, customer_id: str, source: str, up_to_seq: int) -> None:
        """Delete every row of the customer up to the erasure (SPEC §3 rule 5); blank the bad input naming them."""
        for table in CUSTOMER_TABLES:
            self.con.execute(f"DELETE FROM {table} WHERE customer_id = ? AND seq <= ?", [customer_id, up_to_seq])
        self.blank_rejected(customer_id, source, up_to_seq)

    def blank_rejected(self, customer_id: str, source: str, up_to_seq: int) -> None:
        """Blank the rejected lines that name the customer, keeping their reason and position.

        A bad line belongs to no customer for sure (it may not even parse): one that
        holds the id as a JSON string (``"id"``, or ``"id`` at its very end: a line cut
        short) loses its content.  From the erasure's own source (a file, a topic
        partition) that is the lines up to it, from other sources the ones already here.
        """
        needle = orjson.dumps(customer_id).decode()
        in_scope = "(source <> ? OR seq <= ?)"
        # The id may be written with JSON escapes (``"cust\u002d1"``): such lines are parsed to be sure.
        escaped = self.con.execute(
            f"SELECT rowid, raw_text FROM rejected_events WHERE contains(raw_text, '\\') AND {in_scope}",
            [source, up_to_seq],
        ).fetchall()
        naming = [rowid for rowid, text in escaped if customer_id in json_strings(text)]
        self.con.execute(
            "UPDATE rejected_events SET raw = ?, raw_text = ?, detail = replace(detail, ?, ?) "
            f"WHERE (contains(raw_text, ?) OR ends_with(raw_text, ?) OR list_contains(?::BIGINT[], rowid)) AND {in_scope}",
            [ERASED.encode(), ERASED, customer_id, ERASED, needle, needle[:-1], naming, source, up_to_seq],
        )


def json_strings(text: str) -> set[str]:
    """Every string (key or value) in a JSON document; none when it does not parse."""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        return set()
    found: set[str] = set()
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            found.update(value)
            stack.extend(value.values())
    return found
