"""The analyst report, `spoc sql`, `spoc compare` and policy runs, on generated data in real DuckDB files.

Each report number is recomputed here from the rows of the SPEC tables, in Python,
so the report's SQL is checked against a second, independent derivation.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from benchmarks.workload import generate
from ledger.errors import TerminalError
from projections.duckdb_store import SPEC_TABLES
from projections.reading import read_analytics
from reports.compare import compare
from reports.data import STABLE_OWNER_CONTINUITY, TOP_SILO_PATHS, Report, gather
from reports.query import print_query
from spoc.cli import main
from spoc.policy_file import load_policy
from tests.conftest import ROOT
from tests.replaying import rows, run_replay

EAGER_POLICY = "stability_ratio = 1.2\nstability_margin = 0.5\nmin_days_between_changes = 7\n"


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "touchpoints.jsonl"
    with path.open("wb") as out:
        for line in generate(6000, 500, seed=11, dirty=0.02):
            out.write(line + b"\n")
    return path


@pytest.fixture(scope="module")
def db(workload: Path) -> Path:
    built, _ = run_replay(workload.parent, [workload], "base")
    return built


@pytest.fixture(scope="module")
def report(db: Path) -> Report:
    con = read_analytics(db)
    try:
        return gather(con)
    finally:
        con.close()


def wilson(hits: int, total: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = hits / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return centre - half, centre + half


def month_of(t: datetime) -> datetime:
    return datetime(t.year, t.month, 1, tzinfo=UTC)


def add_months(t: datetime, n: int) -> datetime:
    years, month = divmod(t.month - 1 + n, 12)
    return t.replace(year=t.year + years, month=month + 1)


def test_headline_equals_sql_over_the_tables(db: Path, report: Report) -> None:
    h = report.headline
    matches = [m for (m,) in rows(db, "SELECT owner_match FROM touchpoints WHERE owner_match IS NOT NULL")]
    journeys = rows(db, "SELECT fcr FROM journeys")
    silo = rows(db, "SELECT count(*) FROM handoffs WHERE cross_department")[0][0]
    metrics = rows(db, "SELECT owner_continuity, churned FROM customer_metrics")

    assert h.customers == len(metrics) > 400
    assert h.touchpoints == rows(db, "SELECT count(*) FROM touchpoints")[0][0] > 5000
    assert h.rejected == rows(db, "SELECT count(*) FROM rejected_events")[0][0] > 0
    assert h.owner_continuity == pytest.approx(sum(matches) / len(matches))
    assert h.silo_handoffs_per_100_journeys == pytest.approx(100 * silo / len(journeys))
    assert h.fcr == pytest.approx(sum(f for (f,) in journeys) / len(journeys))
    stable = [churned for c, churned in metrics if c is not None and c >= STABLE_OWNER_CONTINUITY]
    unstable = [churned for c, churned in metrics if c is not None and c < STABLE_OWNER_CONTINUITY]
    assert (h.churn_with_stable_owner.hits, h.churn_with_stable_owner.total) == (sum(stable), len(stable))
    assert (h.churn_without_stable_owner.hits, h.churn_without_stable_owner.total) == (sum(unstable), len(unstable))
    assert len(unstable) > 0 and sum(unstable) > 0


def test_follow_up_compliance_and_owner_initiated_touches_are_counted_from_the_rows(db: Path, report: Report) -> None:
    follow_ups = rows(db, "SELECT owner_id, status, epoch(closed_at) - epoch(due_at) FROM follow_ups")
    touches = rows(db, "SELECT employee_id, direction FROM touchpoints WHERE owner_match")
    by_owner: defaultdict[str, list[tuple[str, float]]] = defaultdict(list)
    for owner, status, late in follow_ups:
        by_owner[owner].append((status, late))
    initiated: defaultdict[str, list[bool]] = defaultdict(list)
    for owner, direction in touches:
        initiated[owner].append(direction == "outbound")
    done = sum(status == "done" for _, status, _ in follow_ups)
    assert (report.follow_ups.hits, report.follow_ups.total) == (done, len(follow_ups)) and 0 < done < len(follow_ups)
    outbound = sum(sum(v) for v in initiated.values())
    assert (report.owner_initiated.hits, report.owner_initiated.total) == (outbound, len(touches))
    assert report.follow_up_owners == len(by_owner)
    ranked = sorted(by_owner, key=lambda o: (-len(by_owner[o]), o))[:len(report.top_follow_up_owners)]
    assert [c.owner_id for c in report.top_follow_up_owners] == ranked
    for c in report.top_follow_up_owners:
        statuses = Counter(status for status, _ in by_owner[c.owner_id])
        assert (c.due, c.done, c.open, c.dropped) == (
            len(by_owner[c.owner_id]), statuses["done"], statuses["open"], statuses["dropped"]
        )
        lates = sorted(late / 3600 for status, late in by_owner[c.owner_id] if status == "done")
        middle = len(lates) // 2
        median = None if not lates else lates[middle] if len(lates) % 2 else (lates[middle - 1] + lates[middle]) / 2
        assert c.median_hours_late == pytest.approx(median)
        assert c.done_rate == pytest.approx(statuses["done"] / c.due)
        mine = initiated.get(c.owner_id)
        assert c.owner_initiated == (pytest.approx(sum(mine) / len(mine)) if mine else None)


def test_churn_buckets_carry_sizes_and_wilson_intervals(db: Path, report: Report) -> None:
    for view, buckets in (("churn_by_continuity", report.churn_by_continuity),
                          ("churn_by_handoffs", report.churn_by_handoffs)):
        expected = rows(db, f"SELECT bucket, customers, churned FROM {view}")
        assert [(b.bucket, b.churn.total, b.churn.hits) for b in buckets] == expected
        for b in buckets:
            if b.churn.total:
                assert b.churn.interval == pytest.approx(wilson(b.churn.hits, b.churn.total))
            else:
                assert b.churn.interval is None and b.churn.rate is None


def test_the_outcome_comparisons_are_counted_from_the_rows(db: Path, report: Report) -> None:
    """Churn after journeys, survival, help-first, effort and owner changes, as the report gives them."""
    judged = rows(db, "SELECT silo_handoffs, churned_within_window FROM journey_outcomes WHERE churned_within_window IS NOT NULL")
    for b in report.churn_after_journeys:
        inside = [churned for silo, churned in judged if {"0": silo == 0, "1": silo == 1, "2+": silo >= 2}[b.bucket]]
        assert (b.churn.hits, b.churn.total) == (sum(inside), len(inside))
    assert sum(b.churn.total for b in report.churn_after_journeys) == len(judged) > 1000
    survival = rows(db, "SELECT * FROM continuity_survival")
    assert [(b.bucket, b.customers, b.churned, *b.survival) for b in report.continuity_survival] == survival
    departments: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for department, handled, resolved, transferred, redirected, outside in rows(
        db, "SELECT department, handled, resolved, transferred, redirected, resolved_outside_home FROM help_first"
    ):
        for i, n in enumerate((handled, resolved, transferred + redirected, outside)):
            departments[department][i] += n
    assert {d.department: [d.handled, d.resolved, d.passed_on, d.resolved_outside_home] for d in report.help_first} == departments
    rates = [d.help_first_rate for d in report.help_first]
    assert all(r is not None for r in rates)
    assert rates == sorted(r for r in rates if r is not None)  # the least helpful first
    effort = rows(db, "SELECT touches, redirects, channel_switches, self_service_dead_ends, hours_to_resolve FROM journey_effort")
    e = report.effort
    assert e.journeys == len(effort)
    assert e.mean_touches == pytest.approx(sum(r[0] for r in effort) / len(effort))
    assert e.with_redirect == pytest.approx(sum(r[1] > 0 for r in effort) / len(effort))
    assert e.with_channel_switch == pytest.approx(sum(r[2] > 0 for r in effort) / len(effort))
    assert e.with_dead_end == pytest.approx(sum(r[3] > 0 for r in effort) / len(effort))
    hours = sorted(r[4] for r in effort if r[4] is not None)
    middle = len(hours) // 2
    assert e.median_hours_to_resolve == pytest.approx(hours[middle] if len(hours) % 2 else (hours[middle - 1] + hours[middle]) / 2)
    changes: defaultdict[str, list[tuple[float | None, float | None, int, int, bool | None]]] = defaultdict(list)
    for reason, *row in rows(db, "SELECT reason, mean_csat_before, mean_csat_after, repeat_contacts_before, "
                                 "repeat_contacts_after, churned_within_window FROM owner_change_outcomes"):
        changes[reason].append(tuple(row))
    assert {c.reason for c in report.owner_change_outcomes} == set(changes) and changes
    for c in report.owner_change_outcomes:
        mine = changes[c.reason]
        csat_before = [r[0] for r in mine if r[0] is not None]
        assert c.changes == len(mine)
        assert c.mean_csat_before == (pytest.approx(sum(csat_before) / len(csat_before)) if csat_before else None)
        assert c.repeats_after == pytest.approx(sum(r[3] for r in mine) / len(mine))
        assert (c.churned.hits, c.churned.total) == (sum(r[4] is True for r in mine), sum(r[4] is not None for r in mine))


def test_silo_paths_are_the_busiest_cross_department_pairs(db: Path, report: Report) -> None:
    handoffs = rows(db, """
        SELECT h.from_department, h.to_department, h.reexplained, r.event_id IS NOT NULL
        FROM handoffs h LEFT JOIN repeat_contacts r ON r.event_id = h.to_event_id WHERE h.cross_department
    """)
    by_pair: dict[tuple[str, str], list[tuple[bool, bool]]] = defaultdict(list)
    for src, dst, reexplained, repeated in handoffs:
        by_pair[(src, dst)].append((reexplained, repeated))
    ranked = sorted(by_pair.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:TOP_SILO_PATHS]
    assert report.silo_path_count == len(by_pair)
    assert [(p.from_department, p.to_department, p.handoffs) for p in report.silo_paths] == [
        (*pair, len(flags)) for pair, flags in ranked
    ]
    for path, (_, flags) in zip(report.silo_paths, ranked):
        assert path.reexplained_rate == pytest.approx(sum(r for r, _ in flags) / len(flags))
        assert path.repeat_contact_rate == pytest.approx(sum(x for _, x in flags) / len(flags))


def test_monthly_fcr_and_repeat_rate(db: Path, report: Report) -> None:
    journeys: dict[datetime, list[bool]] = defaultdict(list)
    for first_at, fcr in rows(db, "SELECT first_at, fcr FROM journeys"):
        journeys[month_of(first_at)].append(fcr)
    inbound = Counter(month_of(t) for (t,) in rows(db, "SELECT occurred_at FROM touchpoints WHERE direction = 'inbound'"))
    repeats = Counter(month_of(t) for (t,) in rows(db, "SELECT occurred_at FROM repeat_contacts"))
    assert sum(repeats.values()) > 0
    assert [m.month for m in report.months] == sorted(journeys.keys() | inbound.keys())
    for m in report.months:
        assert m.journeys == len(journeys[m.month])
        assert m.fcr == pytest.approx(sum(journeys[m.month]) / len(journeys[m.month]))
        assert (m.inbound_touches, m.repeat_contacts) == (inbound[m.month], repeats[m.month])
        assert m.repeat_contact_rate == pytest.approx(repeats[m.month] / inbound[m.month])


def test_cohort_retention_counts_customers_not_churned_by_each_month_end(db: Path, report: Report) -> None:
    as_of = report.headline.as_of
    assert as_of is not None
    members: dict[datetime, list[datetime | None]] = defaultdict(list)
    for first_seen, churned_at in rows(db, "SELECT first_seen, churned_at FROM customer_metrics"):
        members[month_of(first_seen)].append(churned_at)
    assert [c.cohort for c in report.cohorts] == sorted(members)
    for cohort in report.cohorts:
        churned = members[cohort.cohort]
        complete = [k for k in range(240) if add_months(cohort.cohort, k + 1) <= as_of]
        assert cohort.customers == len(churned)
        assert cohort.retained == tuple(
            sum(1 for c in churned if c is None or c >= add_months(cohort.cohort, k + 1)) for k in complete
        )
    assert any(r < c.customers for c in report.cohorts for r in c.retained), "some churn should show"


def test_owner_load_lists_the_owners_with_most_customers(db: Path, report: Report) -> None:
    owners = Counter(o for (o,) in rows(db, "SELECT owner_id FROM customer_owner"))
    assert report.owners == len(owners)
    assert [o.customers for o in report.top_owners] == sorted(owners.values(), reverse=True)[: len(report.top_owners)]
    reasons = Counter(r for (r,) in rows(db, "SELECT reason FROM owner_history"))
    assert dict(report.owner_changes_by_reason) == reasons


def test_report_as_of_reads_without_changing_the_file(db: Path) -> None:
    before = rows(db, "SELECT * FROM spoc_settings ORDER BY key")
    late = datetime(2030, 1, 1, tzinfo=UTC)
    con = read_analytics(db, as_of=late)
    try:
        later = gather(con)
    finally:
        con.close()
    assert later.headline.as_of == late
    assert all(b.churn.hits == b.churn.total for b in later.churn_by_handoffs)  # everyone silent for years
    assert rows(db, "SELECT * FROM spoc_settings ORDER BY key") == before


def test_spoc_report_prints_the_headline_and_writes_the_page(
    db: Path, report: Report, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "report.html"
    assert main(["report", "--db", str(db), "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert f"{report.headline.customers:,}" in out and f"{report.headline.touchpoints:,}" in out
    assert "Churn by owner continuity" in out and "Retention by monthly cohort" in out
    # The answer leads; the whole-life exposure tables follow, with the sentence that says why they mislead.
    assert out.index("Churn within 90 days after a journey") < out.index("Survival by early owner continuity") \
        < out.index("Routing to the owner") \
        < out.index("measure exposure, not effect") < out.index("Churn by silo handoffs over the whole life")
    html = page.read_text()
    assert "<script src" not in html and "<link" not in html  # everything embedded
    assert html.count('data-chart="') == 13
    assert html.index('data-chart="churn-after-journeys"') < html.index('data-chart="churn-by-handoffs"')


def test_spoc_sql_shows_the_spec_names_and_keeps_the_rest_in_their_own_schema(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sql", "--db", str(db), "--csv", "SHOW TABLES"]) == 0
    assert capsys.readouterr().out.split()[1:] == sorted(SPEC_TABLES)
    assert main(["sql", "--db", str(db), "--csv", "SELECT count(*) FROM spoc_internal.ledger_events"]) == 0
    assert int(capsys.readouterr().out.split()[1]) > 0
    with pytest.raises(TerminalError, match=r"spoc_internal\.ledger_events"):
        print_query(db, "SELECT * FROM ledger_events")


def test_spoc_sql_prints_tables_and_csv(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "--db", str(db), "--csv", "SELECT bucket, customers FROM churn_by_handoffs"]) == 0
    parsed = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert parsed == [["bucket", "customers"], *([b, str(n)] for b, n in rows(db, "SELECT bucket, customers FROM churn_by_handoffs"))]

    assert main(["sql", "--db", str(db), "--max-rows", "3", "SELECT * FROM customer_metrics ORDER BY customer_id"]) == 0
    out = capsys.readouterr().out
    first = rows(db, "SELECT customer_id FROM customer_metrics ORDER BY customer_id LIMIT 4")
    assert first[2][0] in out and first[3][0] not in out and "3 rows (more rows not shown" in out

    assert main(["sql", "--db", str(db), "SELECT * FROM no_such_table"]) == 2
    assert "no_such_table" in capsys.readouterr().err


def test_policy_run_writes_its_own_database_and_compare_shows_the_differences(
    workload: Path, db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "eager.toml"
    policy.write_text(EAGER_POLICY)
    what_if = tmp_path / "eager.duckdb"
    assert main(["replay", str(workload), "--db", str(what_if), "--policy", str(policy)]) == 0
    assert Path(f"{what_if}.ledger.sqlite").is_file()

    c = compare(db, what_if)
    assert [k for k, _, _ in c.policy_differences] == ["stability_ratio", "stability_margin", "min_days_between_changes"]
    for side, path in ((c.a, db), (c.b, what_if)):
        assert side.owner_changes == dict(rows(path, "SELECT reason, count(*) FROM owner_history GROUP BY reason"))
    assert c.b.owner_changes["affinity"] > c.a.owner_changes["affinity"]
    a_owner = dict(rows(db, "SELECT customer_id, owner_id FROM customer_owner"))
    b_owner = dict(rows(what_if, "SELECT customer_id, owner_id FROM customer_owner"))
    differ = {k for k in a_owner.keys() | b_owner.keys() if a_owner.get(k) != b_owner.get(k)}
    assert {customer for customer, _, _ in c.different_owners} == differ and differ
    # The touches and journeys do not depend on the owner policy; only ownership does.
    assert c.a.headline.touchpoints == c.b.headline.touchpoints and c.a.churn_by_handoffs == c.b.churn_by_handoffs

    capsys.readouterr()
    assert main(["compare", str(db), str(what_if)]) == 0
    out = capsys.readouterr().out
    assert "stability_ratio" in out and f"{len(differ):,}" in out


def test_rebuilding_a_database_under_another_policy_is_refused(workload: Path, tmp_path: Path) -> None:
    policy = tmp_path / "eager.toml"
    policy.write_text(EAGER_POLICY)
    target = tmp_path / "target.duckdb"
    assert main(["replay", str(workload), "--db", str(target)]) == 0
    with pytest.raises(TerminalError, match=r"built with another policy .*stability_ratio 2.0 → 1.2"):
        run_replay(tmp_path, [workload], "target", policy=load_policy(policy))


def test_reading_something_that_is_not_an_analytics_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(TerminalError, match="spoc replay"):
        read_analytics(tmp_path / "missing.duckdb")
    stray = tmp_path / "stray.duckdb"
    duckdb.connect(str(stray)).close()
    with pytest.raises(TerminalError, match="not a SPOC analytics file"):
        read_analytics(stray)


def test_every_example_query_of_the_analyst_docs_runs(db: Path) -> None:
    queries = re.findall(r"```sql\n(.*?)```", (ROOT / "docs" / "analytics.md").read_text(), re.S)
    assert len(queries) >= 5
    con = read_analytics(db, spec_names_only=True)  # as `spoc sql` runs them
    try:
        for query in queries:
            con.execute(query).fetchall()
    finally:
        con.close()
