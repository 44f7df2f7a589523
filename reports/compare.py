"""`spoc compare A B`: how two analytics files (two policies over the same input) differ."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
from rich.console import Group
from rich.table import Table

from ledger.policy import Policy
from projections.reading import read_analytics
from reports import formatting as f
from reports.data import Bucket, Headline, churn_buckets, headline
from reports.terminal import titled_table

EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class Side:
    path: Path
    policy: dict[str, str]
    headline: Headline
    owner_changes: dict[str, int]
    customer_continuity: float | None
    churn_by_continuity: tuple[Bucket, ...]
    churn_by_handoffs: tuple[Bucket, ...]
    owners: dict[str, str]


@dataclass(frozen=True, slots=True)
class Comparison:
    a: Side
    b: Side

    @property
    def policy_differences(self) -> list[tuple[str, str, str]]:
        keys = Policy.__struct_fields__
        return [(k, self.a.policy.get(k, "?"), self.b.policy.get(k, "?")) for k in keys
                if self.a.policy.get(k) != self.b.policy.get(k)]

    @property
    def different_owners(self) -> list[tuple[str, str | None, str | None]]:
        """Customers whose current owner differs (None: no owner on that side)."""
        a, b = self.a.owners, self.b.owners
        return sorted((c, a.get(c), b.get(c)) for c in a.keys() | b.keys() if a.get(c) != b.get(c))


def _side(path: Path, con: duckdb.DuckDBPyConnection) -> Side:
    return Side(
        path=path,
        policy=dict(con.execute("SELECT key, value FROM spoc_settings").fetchall()),
        headline=headline(con),
        owner_changes=dict(con.execute("SELECT reason, count(*) FROM owner_history GROUP BY reason").fetchall()),
        customer_continuity=con.sql("SELECT avg(owner_continuity) FROM customer_metrics").fetchall()[0][0],
        churn_by_continuity=churn_buckets(con, "churn_by_continuity"),
        churn_by_handoffs=churn_buckets(con, "churn_by_handoffs"),
        owners=dict(con.execute("SELECT customer_id, owner_id FROM customer_owner").fetchall()),
    )


def compare(a: str | Path, b: str | Path) -> Comparison:
    sides = []
    for path in (Path(a), Path(b)):
        con = read_analytics(path)
        try:
            sides.append(_side(path, con))
        finally:
            con.close()
    return Comparison(*sides)


def _delta_count(a: int, b: int) -> str:
    return f"{b - a:+,}"


def _delta_rate(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return f.MISSING
    points = round(100 * (b - a), 1) + 0.0  # no "-0.0"
    return f"{points:+.1f} pp"


def render(c: Comparison) -> Group:
    a, b = c.a, c.b
    heads = ("", f"A: {a.path.name}", f"B: {b.path.name}", "B − A")

    policy = titled_table("Policy", "setting", *heads[1:3])
    for key, va, vb in c.policy_differences:
        policy.add_row(key, va, vb)
    if not c.policy_differences:
        policy.add_row("(the same policy)", "", "")

    changes = titled_table("Owner changes by reason", "reason", *heads[1:])
    reasons = sorted(a.owner_changes.keys() | b.owner_changes.keys(), key=lambda r: (r is None, r or ""))
    for reason in reasons:
        na, nb = a.owner_changes.get(reason, 0), b.owner_changes.get(reason, 0)
        changes.add_row(reason or "-", f.count(na), f.count(nb), _delta_count(na, nb))
    ta, tb = sum(a.owner_changes.values()), sum(b.owner_changes.values())
    changes.add_row("all", f.count(ta), f.count(tb), _delta_count(ta, tb), style="bold")

    moved = c.different_owners
    summary = titled_table("Ownership and continuity", *heads)
    ha, hb = a.headline, b.headline
    summary.add_row("customers with an owner now", f.count(len(a.owners)), f.count(len(b.owners)),
                    _delta_count(len(a.owners), len(b.owners)))
    summary.add_row("customers whose current owner differs", "", f.count(len(moved)), "")
    summary.add_row("owner continuity (all touches)", f.percent(ha.owner_continuity), f.percent(hb.owner_continuity),
                    _delta_rate(ha.owner_continuity, hb.owner_continuity))
    summary.add_row("owner continuity (mean per customer)", f.percent(a.customer_continuity),
                    f.percent(b.customer_continuity), _delta_rate(a.customer_continuity, b.customer_continuity))
    summary.add_row("churn, stable owner", f.interval(ha.churn_with_stable_owner), f.interval(hb.churn_with_stable_owner),
                    _delta_rate(ha.churn_with_stable_owner.rate, hb.churn_with_stable_owner.rate))
    summary.add_row("churn, no stable owner", f.interval(ha.churn_without_stable_owner),
                    f.interval(hb.churn_without_stable_owner),
                    _delta_rate(ha.churn_without_stable_owner.rate, hb.churn_without_stable_owner.rate))

    def churn(title: str, xs: tuple[Bucket, ...], ys: tuple[Bucket, ...]) -> Table:
        t = titled_table(title, "bucket", "A customers", "A churn [95% CI]", "B customers", "B churn [95% CI]", "B − A")
        for x, y in zip(xs, ys):
            t.add_row(x.bucket, f.count(x.churn.total), f.interval(x.churn), f.count(y.churn.total),
                      f.interval(y.churn), _delta_rate(x.churn.rate, y.churn.rate))
        return t

    examples = titled_table(f"Customers whose owner differs (first {min(EXAMPLES, len(moved))} of {f.count(len(moved))})",
                     "customer", "A owner", "B owner")
    for customer, oa, ob in moved[:EXAMPLES]:
        examples.add_row(customer, oa or "(none)", ob or "(none)")

    return Group(
        policy, changes, summary,
        churn("Churn by owner continuity (%)", a.churn_by_continuity, b.churn_by_continuity),
        churn("Churn by silo handoffs", a.churn_by_handoffs, b.churn_by_handoffs),
        examples,
    )
