"""The numbers of the analyst report, read from the SPEC §7 views of one analytics file.

Every figure here is one SQL query over the views, so an analyst can reproduce it
(docs/analytics.md shows the queries); the renderers only format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from reports.stats import Proportion

STABLE_OWNER_CONTINUITY = 0.75
"""A customer has a stable owner when at least this share of their touches went to their person
(the top bucket of ``churn_by_continuity``)."""
TOP_SILO_PATHS = 10
TOP_OWNERS = 20
SURVIVAL_DAYS = (90, 180, 365)
"""The horizons of ``continuity_survival`` (days after the landmark)."""
EXPOSURE_NOTE = (
    "Churn by continuity and by silo handoffs counts over each customer's whole life, and a customer seen longer "
    "has more handoffs and more chances to be counted as kept, so those tables measure exposure, not effect; "
    "read churn after journeys and survival from the landmark instead."
)


@dataclass(frozen=True, slots=True)
class Headline:
    as_of: datetime | None
    customers: int
    touchpoints: int
    journeys: int
    rejected: int
    owner_continuity: float | None
    silo_handoffs: int
    fcr: float | None
    churn_with_stable_owner: Proportion
    churn_without_stable_owner: Proportion

    @property
    def silo_handoffs_per_100_journeys(self) -> float | None:
        return 100.0 * self.silo_handoffs / self.journeys if self.journeys else None


@dataclass(frozen=True, slots=True)
class Bucket:
    bucket: str
    churn: Proportion


@dataclass(frozen=True, slots=True)
class SiloPath:
    from_department: str
    to_department: str
    handoffs: int
    reexplained_rate: float
    repeat_contact_rate: float


@dataclass(frozen=True, slots=True)
class Month:
    month: datetime
    journeys: int
    fcr: float | None
    inbound_touches: int
    repeat_contacts: int

    @property
    def repeat_contact_rate(self) -> float | None:
        return self.repeat_contacts / self.inbound_touches if self.inbound_touches else None


@dataclass(frozen=True, slots=True)
class Cohort:
    cohort: datetime
    customers: int
    retained: tuple[int, ...]
    """Customers not churned by the end of month 0, 1, 2, ... after the cohort's first month;
    complete months before ``as_of`` only."""


@dataclass(frozen=True, slots=True)
class OwnerLoad:
    owner_id: str
    customers: int
    touches: int
    continuity: float | None


@dataclass(frozen=True, slots=True)
class FollowUpCompliance:
    """One owner's follow-ups that fell due (SPEC §8), and how much of their contact they started."""

    owner_id: str
    due: int
    done: int
    open: int
    dropped: int
    done_rate: float | None
    median_hours_late: float | None
    owner_initiated: float | None
    """Outbound touches among the touches they handled as their customers' owner (null: none)."""


@dataclass(frozen=True, slots=True)
class SurvivalBucket:
    """Customers of one early-continuity bucket, followed from their landmark (``continuity_survival``)."""

    bucket: str
    customers: int
    churned: int
    survival: tuple[float | None, ...]
    """Kaplan-Meier survival at each of ``SURVIVAL_DAYS`` (None: nobody followed that long)."""


@dataclass(frozen=True, slots=True)
class HelpFirst:
    """How a department's inbound touches handled by an employee ended (``help_first``, summed)."""

    department: str
    handled: int
    resolved: int
    passed_on: int
    """Transferred or redirected."""
    resolved_outside_home: int

    @property
    def help_first_rate(self) -> float | None:
        decided = self.resolved + self.passed_on
        return self.resolved / decided if decided else None


@dataclass(frozen=True, slots=True)
class Effort:
    """What journeys cost customers (``journey_effort``), over every journey."""

    journeys: int
    mean_touches: float | None
    with_redirect: float | None
    with_channel_switch: float | None
    with_dead_end: float | None
    median_hours_to_resolve: float | None


@dataclass(frozen=True, slots=True)
class OwnerChangeOutcome:
    """What followed changes of an existing owner, for one reason (``owner_change_outcomes``)."""

    reason: str
    changes: int
    mean_csat_before: float | None
    mean_csat_after: float | None
    repeats_before: float | None
    repeats_after: float | None
    """Mean repeat contacts per change in the window before and after it."""
    churned: Proportion
    """Changes followed by churn within the window, of those whose window closed."""


@dataclass(frozen=True, slots=True)
class Routing:
    """Where customers' inbound touches would have gone by SPEC §9's route at their moment, and how many
    transfers were warm."""

    inbound: int
    no_owner: int
    """Inbound touches of customers with no owner just before them: the route names a department only."""
    owner_available: int
    """… whose owner was there: ``route_to`` = the owner."""
    owner_away: int
    """… whose owner was away (``employee_away`` until its ``until`` or an ``employee_returned``): a fallback."""
    owner_departed: int
    """… whose owner had departed (left unassigned by rule 3 has no owner, so this is rare): a fallback."""
    transfers: int
    warm_transfers: int
    """Transfers whose earlier touch passed the context on (``context_passed``): nobody re-explained."""

    @property
    def to_owner(self) -> Proportion:
        return Proportion(self.owner_available, self.inbound - self.no_owner)

    @property
    def warm(self) -> Proportion:
        return Proportion(self.warm_transfers, self.transfers)


@dataclass(frozen=True, slots=True)
class Report:
    headline: Headline
    churn_by_continuity: tuple[Bucket, ...]
    churn_by_handoffs: tuple[Bucket, ...]
    owner_changes_by_reason: tuple[tuple[str, int], ...]
    silo_paths: tuple[SiloPath, ...]
    silo_path_count: int
    months: tuple[Month, ...]
    cohorts: tuple[Cohort, ...]
    owners: int
    top_owners: tuple[OwnerLoad, ...]
    follow_ups: Proportion
    """Follow-ups done out of those that fell due."""
    owner_initiated: Proportion
    """Owners' outbound touches out of every touch handled by the customer's owner."""
    follow_up_owners: int
    top_follow_up_owners: tuple[FollowUpCompliance, ...]
    outcome_window_days: float
    landmark_days: float
    churn_after_journeys: tuple[Bucket, ...]
    """Per silo-handoff bucket of a journey: journeys followed by churn within the outcome window."""
    continuity_survival: tuple[SurvivalBucket, ...]
    help_first: tuple[HelpFirst, ...]
    effort: Effort
    owner_change_outcomes: tuple[OwnerChangeOutcome, ...]
    routing: Routing


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> tuple[Any, ...]:
    row = con.execute(sql, params or []).fetchone()
    assert row is not None
    return row


def _all(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(sql).fetchall()


def headline(con: duckdb.DuckDBPyConnection) -> Headline:
    (as_of, customers, touchpoints, journeys, rejected, continuity, silo, fcr) = _one(con, """
        SELECT (SELECT as_of FROM spoc_window),
               (SELECT count(*) FROM customer_metrics),
               (SELECT count(*) FROM touchpoints),
               (SELECT count(*) FROM journeys),
               (SELECT count(*) FROM rejected_events),
               (SELECT avg(owner_match::INTEGER) FROM touchpoints WHERE owner_match IS NOT NULL),
               (SELECT count(*) FROM handoffs WHERE cross_department),
               (SELECT avg(fcr::INTEGER) FROM journeys)
    """)
    stable_n, stable_churned, unstable_n, unstable_churned = _one(con, """
        SELECT count(*) FILTER (WHERE owner_continuity >= $1),
               count(*) FILTER (WHERE owner_continuity >= $1 AND churned),
               count(*) FILTER (WHERE owner_continuity < $1),
               count(*) FILTER (WHERE owner_continuity < $1 AND churned)
        FROM customer_metrics
    """, [STABLE_OWNER_CONTINUITY])
    return Headline(
        as_of, customers, touchpoints, journeys, rejected, continuity, silo, fcr,
        Proportion(stable_churned, stable_n), Proportion(unstable_churned, unstable_n),
    )


def churn_buckets(con: duckdb.DuckDBPyConnection, view: str, counted: str = "customers") -> tuple[Bucket, ...]:
    return tuple(Bucket(b, Proportion(churned, n)) for b, n, churned in _all(con, f"SELECT bucket, {counted}, churned FROM {view}"))


def continuity_survival(con: duckdb.DuckDBPyConnection) -> tuple[SurvivalBucket, ...]:
    return tuple(
        SurvivalBucket(bucket, customers, churned, tuple(survival))
        for bucket, customers, churned, *survival in _all(con, f"""
            SELECT bucket, customers, churned, {', '.join(f'survival_{d}d' for d in SURVIVAL_DAYS)}
            FROM continuity_survival
        """)
    )


def help_first(con: duckdb.DuckDBPyConnection) -> tuple[HelpFirst, ...]:
    return tuple(HelpFirst(*row) for row in _all(con, """
        SELECT department, sum(handled)::BIGINT, sum(resolved)::BIGINT, sum(transferred + redirected)::BIGINT,
               sum(resolved_outside_home)::BIGINT
        FROM help_first GROUP BY department
        ORDER BY sum(resolved) / nullif(sum(resolved + transferred + redirected), 0) NULLS LAST, department
    """))


def effort(con: duckdb.DuckDBPyConnection) -> Effort:
    return Effort(*_one(con, """
        SELECT count(*), avg(touches), avg((redirects > 0)::INTEGER), avg((channel_switches > 0)::INTEGER),
               avg((self_service_dead_ends > 0)::INTEGER), median(hours_to_resolve)
        FROM journey_effort
    """))


ROUTING = """
WITH absences AS (
    SELECT a.employee_id, a.occurred_at AS start_at,
           least(coalesce(a.until, 'infinity'::TIMESTAMPTZ), coalesce((
               SELECT min(r.occurred_at) FROM control_events r
               WHERE r.type = 'employee_returned' AND r.employee_id = a.employee_id AND r.occurred_at >= a.occurred_at
           ), 'infinity'::TIMESTAMPTZ)) AS end_at
    FROM control_events a WHERE a.type = 'employee_away'
), departures AS (
    SELECT employee_id, min(occurred_at) AS departed_at FROM control_events WHERE type = 'employee_departed' GROUP BY ALL
), calls AS (
    SELECT t.owner_before,
           EXISTS (SELECT 1 FROM departures d WHERE d.employee_id = t.owner_before AND d.departed_at <= t.occurred_at)
               AS departed,
           EXISTS (SELECT 1 FROM absences x WHERE x.employee_id = t.owner_before
                   AND x.start_at <= t.occurred_at AND t.occurred_at < x.end_at) AS away
    FROM touchpoints t WHERE t.direction = 'inbound'
)
SELECT count(*), count(*) FILTER (WHERE owner_before IS NULL),
       count(*) FILTER (WHERE owner_before IS NOT NULL AND NOT departed AND NOT away),
       count(*) FILTER (WHERE owner_before IS NOT NULL AND NOT departed AND away),
       count(*) FILTER (WHERE owner_before IS NOT NULL AND departed),
       (SELECT count(*) FROM handoffs WHERE kind = 'transfer'),
       (SELECT count(*) FROM handoffs h JOIN touchpoints f ON f.event_id = h.from_event_id
        WHERE h.kind = 'transfer' AND f.context_passed)
FROM calls
"""
"""SPEC §9 at each inbound touch, from the owner just before it (``owner_before``) and the absences and departures
in ``control_events``: an absence runs from its ``employee_away`` to its ``until`` or the employee's next
``employee_returned``, whichever is first."""


def routing(con: duckdb.DuckDBPyConnection) -> Routing:
    return Routing(*_one(con, ROUTING))


def owner_change_outcomes(con: duckdb.DuckDBPyConnection) -> tuple[OwnerChangeOutcome, ...]:
    rows = _all(con, """
        SELECT reason, count(*) AS changes, avg(mean_csat_before), avg(mean_csat_after),
               avg(repeat_contacts_before), avg(repeat_contacts_after),
               count(*) FILTER (WHERE churned_within_window), count(churned_within_window)
        FROM owner_change_outcomes GROUP BY reason ORDER BY changes DESC, reason
    """)
    return tuple(
        OwnerChangeOutcome(reason, changes, csat_before, csat_after, repeats_before, repeats_after, Proportion(churned, judged))
        for reason, changes, csat_before, csat_after, repeats_before, repeats_after, churned, judged in rows
    )


def months(con: duckdb.DuckDBPyConnection) -> tuple[Month, ...]:
    rows = _all(con, """
        WITH fcr AS (
            SELECT date_trunc('month', first_at) AS month, count(*) AS journeys, avg(fcr::INTEGER) AS fcr
            FROM journeys GROUP BY ALL
        ), inbound AS (
            SELECT date_trunc('month', occurred_at) AS month, count(*) AS inbound
            FROM touchpoints WHERE direction = 'inbound' GROUP BY ALL
        ), repeats AS (
            SELECT date_trunc('month', occurred_at) AS month, count(*) AS repeats FROM repeat_contacts GROUP BY ALL
        )
        SELECT month, coalesce(journeys, 0), fcr, coalesce(inbound, 0), coalesce(repeats, 0)
        FROM fcr FULL JOIN inbound USING (month) FULL JOIN repeats USING (month)
        ORDER BY month
    """)
    return tuple(Month(*row) for row in rows)


def cohorts(con: duckdb.DuckDBPyConnection) -> tuple[Cohort, ...]:
    rows = _all(con, """
        WITH members AS (
            SELECT date_trunc('month', first_seen) AS cohort, churned_at FROM customer_metrics
        ), sizes AS (
            SELECT cohort, count(*) AS customers FROM members GROUP BY cohort
        ), cells AS (
            SELECT s.cohort, s.customers, k.generate_series AS k
            FROM sizes s, generate_series(0, 1200) k
            WHERE s.cohort + to_months(k.generate_series + 1) <= (SELECT as_of FROM spoc_window)
        )
        SELECT s.cohort, s.customers,
               list(c.retained ORDER BY c.k) FILTER (WHERE c.k IS NOT NULL) AS retained
        FROM sizes s
        LEFT JOIN (
            SELECT cells.cohort, cells.k,
                   count(*) FILTER (WHERE m.churned_at IS NULL OR m.churned_at >= cells.cohort + to_months(cells.k + 1))
                       AS retained
            FROM cells JOIN members m USING (cohort)
            GROUP BY ALL
        ) c USING (cohort)
        GROUP BY ALL
        ORDER BY s.cohort
    """)
    return tuple(Cohort(cohort, customers, tuple(retained or ())) for cohort, customers, retained in rows)


OWNER_INITIATED = """
    SELECT employee_id AS owner_id, count(*) FILTER (WHERE direction = 'outbound') AS outbound, count(*) AS handled
    FROM touchpoints WHERE owner_match GROUP BY employee_id
"""
"""Per owner: of the touches they handled as the customer's owner, the ones they started."""


def follow_up_compliance(con: duckdb.DuckDBPyConnection) -> tuple[Proportion, Proportion, int, tuple[FollowUpCompliance, ...]]:
    """Follow-ups done of those due, owner-initiated touches of the owners' touches, and the owners with most due."""
    done, due, outbound, handled, owners = _one(con, f"""
        SELECT (SELECT count(*) FILTER (WHERE status = 'done') FROM follow_ups),
               (SELECT count(*) FROM follow_ups),
               (SELECT coalesce(sum(outbound), 0) FROM ({OWNER_INITIATED})),
               (SELECT coalesce(sum(handled), 0) FROM ({OWNER_INITIATED})),
               (SELECT count(*) FROM follow_up_compliance)
    """)
    rows = _all(con, f"""
        SELECT c.owner_id, c.due, c.done, c.open, c.dropped, c.done_rate, c.median_hours_late,
               i.outbound / i.handled
        FROM follow_up_compliance c LEFT JOIN ({OWNER_INITIATED}) i USING (owner_id)
        ORDER BY c.due DESC, c.owner_id
        LIMIT {TOP_OWNERS}
    """)
    return (
        Proportion(done, due), Proportion(outbound, handled), owners,
        tuple(FollowUpCompliance(*row) for row in rows),
    )


def gather(con: duckdb.DuckDBPyConnection) -> Report:
    """Every number of the report, from a connection that has the SPEC §7 views."""
    (silo_path_count, owners) = _one(con, "SELECT (SELECT count(*) FROM silo_paths), (SELECT count(*) FROM owner_load)")
    follow_ups, owner_initiated, follow_up_owners, top_follow_up_owners = follow_up_compliance(con)
    outcome_window_days, landmark_days = _one(con, "SELECT outcome_window_days, landmark_days FROM spoc_window")
    return Report(
        headline=headline(con),
        churn_by_continuity=churn_buckets(con, "churn_by_continuity"),
        churn_by_handoffs=churn_buckets(con, "churn_by_handoffs"),
        owner_changes_by_reason=tuple(
            (reason, n) for reason, n in _all(
                con, "SELECT reason, count(*) AS n FROM owner_history GROUP BY reason ORDER BY n DESC, reason"
            )
        ),
        silo_paths=tuple(SiloPath(*row) for row in _all(con, f"""
            SELECT from_department, to_department, handoffs, reexplained_rate, repeat_contact_rate
            FROM silo_paths LIMIT {TOP_SILO_PATHS}
        """)),
        silo_path_count=silo_path_count,
        months=months(con),
        cohorts=cohorts(con),
        owners=owners,
        top_owners=tuple(OwnerLoad(*row) for row in _all(
            con, f"SELECT owner_id, customers, touches, continuity FROM owner_load LIMIT {TOP_OWNERS}"
        )),
        follow_ups=follow_ups,
        owner_initiated=owner_initiated,
        follow_up_owners=follow_up_owners,
        top_follow_up_owners=top_follow_up_owners,
        outcome_window_days=outcome_window_days,
        landmark_days=landmark_days,
        churn_after_journeys=churn_buckets(con, "churn_after_journeys", counted="journeys"),
        continuity_survival=continuity_survival(con),
        help_first=help_first(con),
        effort=effort(con),
        owner_change_outcomes=owner_change_outcomes(con),
        routing=routing(con),
    )
