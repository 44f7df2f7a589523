"""``spoc owner``: who owned a customer at a time, since when, and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import orjson

from reports.formatting import as_data
from spoc.timestamps import UsageError


@dataclass(frozen=True)
class OwnerAnswer:
    customer_id: str
    owner_id: str | None
    since: datetime
    until: datetime | None
    reason: str
    event_id: str
    affinities: dict[str, float]

    def render(self) -> str:
        """The answer as lines of text; ids are data, so their control characters are shown escaped."""
        owner = as_data(self.owner_id) if self.owner_id is not None else "(none)"
        lines = [
            f"customer  {as_data(self.customer_id)}",
            f"owner     {owner}",
            f"since     {self.since.isoformat()}",
            f"until     {self.until.isoformat() if self.until else '(current)'}",
            f"reason    {self.reason}",
            f"event     {as_data(self.event_id)}",
        ]
        if self.affinities:
            decided = ", ".join(f"{as_data(e)}={a:.3f}" for e, a in sorted(self.affinities.items()))
            lines.append(f"affinity  {decided}")
        return "\n".join(lines)


@dataclass(frozen=True)
class NoOwner:
    """Why there is no owner period to show: the customer is not in the file, or not yet owned."""

    customer_id: str
    at: datetime | None
    first_seen: datetime | None
    touches: int

    def render(self, db: str | Path) -> str:
        customer = as_data(self.customer_id)
        if self.first_seen is None:
            return (f"customer {customer} is not in {db}: no accepted touchpoint names it "
                    "(check the id; or it is not replayed yet, or was erased)")
        if self.at is not None and self.first_seen > self.at:
            return f"customer {customer} had no owner at {self.at.isoformat()}: first seen {self.first_seen.isoformat()}"
        when = f" at {self.at.isoformat()}" if self.at is not None else ""
        return (f"customer {customer} has no owner{when}: seen since {self.first_seen.isoformat()} "
                f"({self.touches:,} touches), none of them made an employee its owner yet (SPEC §3)")


def owner_at(db: str | Path, customer_id: str, at: datetime | None) -> OwnerAnswer | NoOwner:
    """The owner period covering ``at`` (default: now, i.e. the latest period), or why there is none."""
    if not Path(db).is_file():
        raise UsageError(f"no analytics file at {db}; create it with `spoc replay INPUT --db {db}`")
    with duckdb.connect(str(db), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        seen = con.execute(
            "SELECT min(occurred_at), count(*) FROM touchpoints WHERE customer_id = $customer", {"customer": customer_id}
        ).fetchone()
        row = con.execute(
            """
            SELECT owner_id, valid_from, valid_to, reason, event_id, affinities
            FROM owner_history
            WHERE customer_id = $customer
              AND ($at IS NULL OR (valid_from <= $at AND (valid_to IS NULL OR valid_to > $at)))
            ORDER BY (valid_to IS NULL) DESC, valid_from DESC
            LIMIT 1
            """,
            {"customer": customer_id, "at": at},
        ).fetchone()
    if row is None:
        first_seen, touches = seen if seen else (None, 0)
        return NoOwner(customer_id, at, first_seen, touches)
    owner_id, since, until, reason, event_id, affinities = row
    return OwnerAnswer(
        customer_id, owner_id, since, until, reason, event_id, orjson.loads(affinities) if affinities else {}
    )
