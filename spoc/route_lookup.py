"""``spoc route``: who should take a customer now, or at a past moment (SPEC §9), from an analytics file.

The inputs of the route are read as the history stood at *t* (the owner then, affinities then,
who was away or departed then); the ranking is the core's (:func:`ledger.routing.route`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

from ledger.policy import DAY, DEFAULT_POLICY
from ledger.routing import Availability, Route, Standing, route
from reports.formatting import as_data
from spoc.timestamps import UsageError

OWNER_EVENTS = ("OwnerAssigned", "OwnerChanged")
BROADCASTS = ("employee_departed", "employee_away", "employee_returned")


def route_at(db: str | Path, customer_id: str, at: datetime | None) -> tuple[datetime, Route] | None:
    """The route of ``customer_id`` at ``at`` (default: the customer's latest event), or None for a
    customer the file has no event of by then."""
    if not Path(db).is_file():
        raise UsageError(f"no analytics file at {db}; create it with `spoc replay INPUT --db {db}`")
    with duckdb.connect(str(db), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        (latest,) = con.execute(
            """
            SELECT max(occurred_at) FROM (
                SELECT occurred_at FROM touchpoints WHERE customer_id = $c
                UNION ALL SELECT occurred_at FROM control_events WHERE customer_id = $c
            ) WHERE $at IS NULL OR occurred_at <= $at
            """,
            {"c": customer_id, "at": at},
        ).fetchone() or (None,)
        if latest is None:
            return None
        if at is None:  # departures and absences concern every customer: they are theirs too
            (broadcast,) = con.execute(
                f"SELECT max(occurred_at) FROM control_events WHERE type IN {BROADCASTS}"
            ).fetchone() or (None,)
            latest = max(latest, broadcast) if broadcast is not None else latest
        t = at or latest
        half_life = _half_life_days(con) * DAY
        owner_row = con.execute(
            f"""
            SELECT owner_id FROM ledger_events
            WHERE customer_id = $c AND event_type IN {OWNER_EVENTS} AND occurred_at <= $t
            ORDER BY seq DESC, version DESC LIMIT 1
            """,
            {"c": customer_id, "t": t},
        ).fetchone()
        standings = {
            employee: Standing(affinity, last_touch)
            for employee, affinity, last_touch in con.execute(
                """
                SELECT employee_id,
                       sum(weight * pow(2, -(epoch($t) - epoch(occurred_at)) / $h)),
                       max(epoch(occurred_at))
                FROM touchpoints
                WHERE customer_id = $c AND employee_id IS NOT NULL AND occurred_at <= $t
                GROUP BY employee_id
                """,
                {"c": customer_id, "t": t, "h": half_life},
            ).fetchall()
        }
        departed = {e for (e,) in con.execute(
            "SELECT employee_id FROM control_events WHERE type = 'employee_departed' AND occurred_at <= $t", {"t": t}
        ).fetchall()}
        availability = Availability()
        # A file from before availability has no `until` column (and no absences).
        until = "until" if con.execute(
            "SELECT 1 FROM duckdb_columns() WHERE table_name = 'control_events' AND column_name = 'until'"
        ).fetchone() else "NULL::TIMESTAMPTZ"
        for kind, employee, when, ends in con.execute(
            f"""
            SELECT type, employee_id, epoch(occurred_at), epoch({until}) FROM control_events
            WHERE type IN ('employee_away', 'employee_returned') AND occurred_at <= $t ORDER BY seq
            """,
            {"t": t},
        ).fetchall():
            if kind == "employee_away":
                availability.away(employee, when, ends)
            else:
                availability.returned(employee, when)
        departments = con.execute(
            """
            SELECT employee_id, department FROM touchpoints
            WHERE customer_id = $c AND employee_id IS NOT NULL AND occurred_at <= $t
            ORDER BY occurred_at, seq
            """,
            {"c": customer_id, "t": t},
        ).fetchall()
    latest_department: dict[str, str] = dict(departments)  # the latest touch with each employee wins
    any_department = departments[-1][1] if departments else None
    moment = t.timestamp()
    answer = route(
        owner_row[0] if owner_row else None,
        standings,
        lambda e: e in departed or availability.is_away(e, moment),
        lambda e: any_department if e is None else latest_department.get(e),
    )
    return t, answer


def _half_life_days(con: duckdb.DuckDBPyConnection) -> float:
    row = con.execute("SELECT value FROM spoc_settings WHERE key = 'half_life_days'").fetchone()
    return float(row[0]) if row else DEFAULT_POLICY.half_life_days


def render(customer_id: str, t: datetime, answer: Route) -> str:
    """The route as lines of text; ids are data, so their control characters are shown escaped."""
    owner = as_data(answer.owner) if answer.owner is not None else "(none)"
    lines = [
        f"customer    {as_data(customer_id)}",
        f"at          {t.isoformat()}",
        f"owner       {owner} ({'available' if answer.owner_available else 'not available'})",
        f"route to    {as_data(answer.route_to) if answer.route_to is not None else '(nobody: route by department)'}",
        f"department  {as_data(answer.department) if answer.department is not None else '(none)'}",
    ]
    for rank, c in enumerate(answer.candidates, 1):
        lines.append(f"candidate {rank} {as_data(c.employee_id)}  affinity {c.affinity:.3f}  score {c.score}")
    return "\n".join(lines)
