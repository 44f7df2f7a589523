"""The report in the terminal: headline numbers, then one table per question."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from reports import formatting as f
from reports.data import EXPOSURE_NOTE, STABLE_OWNER_CONTINUITY, SURVIVAL_DAYS, Bucket, Report

RETENTION_MILESTONES = (0, 1, 2, 3, 6, 9, 12, 18, 24)
"""Months after the first whose retention the terminal shows (the HTML page shows every month)."""


class DataTable(Table):
    """A table whose text cells are data: never markup, control characters escaped (``f.as_data``)."""

    def add_row(self, *renderables: RenderableType | None, **options: Any) -> None:
        super().add_row(*(Text(f.as_data(r, in_a_cell=True)) if isinstance(r, str) else r for r in renderables), **options)


def titled_table(title: str, *columns: str) -> Table:
    table = DataTable(title=title, title_justify="left", title_style="bold", header_style="bold")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    return table


def _headline(report: Report) -> Table:
    h = report.headline
    table = titled_table(f"SPOC report as of {f.day(h.as_of)}", "", "")
    table.show_header = False
    table.columns[0].no_wrap = True
    rows = [
        ("Customers", f.count(h.customers)),
        ("Touchpoints", f"{f.count(h.touchpoints)}  ({f.count(h.rejected)} rejected inputs)"),
        ("Owner continuity (touches with their person)", f.percent(h.owner_continuity)),
        ("Silo handoffs per 100 journeys", f.decimal(h.silo_handoffs_per_100_journeys)),
        ("First-contact resolution", f.percent(h.fcr)),
        (f"Churn, stable owner (continuity ≥ {STABLE_OWNER_CONTINUITY:.0%}; n={f.count(h.churn_with_stable_owner.total)})",
         f.interval(h.churn_with_stable_owner)),
        (f"Churn, no stable owner (n={f.count(h.churn_without_stable_owner.total)})",
         f.interval(h.churn_without_stable_owner)),
        (f"Follow-ups done of those due (n={f.count(report.follow_ups.total)})", f.percent(report.follow_ups.rate)),
        ("Owner-initiated touches (of the owners' touches)", f.percent(report.owner_initiated.rate)),
    ]
    for label, value in rows:
        table.add_row(label, value)
    return table


def _churn(title: str, buckets: tuple[Bucket, ...], counted: str = "customers") -> Table:
    table = titled_table(title, "bucket", counted, "churned", "churn rate [95% CI]")
    for b in buckets:
        table.add_row(b.bucket, f.count(b.churn.total), f.count(b.churn.hits), f.interval(b.churn))
    return table


def _answer(report: Report) -> list[RenderableType]:
    """The comparisons that can be read as effects: journeys and survival, not lifetime exposure."""
    survival = titled_table(
        f"Survival by early owner continuity (followed from {report.landmark_days:g} days after the first owner; "
        "Kaplan-Meier)",
        "continuity (%)", "customers", "churned since", *(f"kept {d} days" for d in SURVIVAL_DAYS),
    )
    for b in report.continuity_survival:
        survival.add_row(b.bucket, f.count(b.customers), f.count(b.churned), *(f.percent(s) for s in b.survival))
    helped = titled_table("Help first, transfer second: inbound touches by department", "department", "handled",
                          "resolved", "passed on", "help-first rate", "resolved outside home")
    for d in report.help_first:
        helped.add_row(d.department, f.count(d.handled), f.count(d.resolved), f.count(d.passed_on),
                       f.percent(d.help_first_rate), f.count(d.resolved_outside_home))
    e = report.effort
    effort = titled_table("Customer effort per journey", "", "")
    effort.show_header = False
    for label, value in (
        ("Journeys", f.count(e.journeys)), ("Touches per journey", f.decimal(e.mean_touches)),
        ("With a redirect (customer sent to reach out again)", f.percent(e.with_redirect)),
        ("With a channel switch", f.percent(e.with_channel_switch)),
        ("With a self-service dead end", f.percent(e.with_dead_end)),
        ("Median hours to resolve", f.decimal(e.median_hours_to_resolve)),
    ):
        effort.add_row(label, value)
    r = report.routing
    with_owner = r.inbound - r.no_owner
    routed = titled_table("Routing to the owner (SPEC §9 at each inbound touch)", "", "")
    routed.show_header = False
    for label, value in (
        ("Inbound touches", f.count(r.inbound)),
        ("… from customers with no owner yet (routed to a department)", f.count(r.no_owner)),
        ("… from customers with an owner", f.count(with_owner)),
        ("Would have reached the owner (route_to = owner) [95% CI]", f.interval(r.to_owner)),
        ("Fallback: the owner was away", f.percent(r.owner_away / with_owner if with_owner else None)),
        ("Fallback: the owner had departed", f.percent(r.owner_departed / with_owner if with_owner else None)),
        ("Transfers", f.count(r.transfers)),
        ("… warm (the context passed on) [95% CI]", f.interval(r.warm)),
    ):
        routed.add_row(label, value)
    changes = titled_table(f"What followed owner changes ({report.outcome_window_days:g} days before vs after)",
                           "reason", "changes",
                           "csat before", "csat after", "repeats before", "repeats after", "churned within [95% CI]")
    for c in report.owner_change_outcomes:
        changes.add_row(c.reason, f.count(c.changes), f.decimal(c.mean_csat_before), f.decimal(c.mean_csat_after),
                        f.decimal(c.repeats_before), f.decimal(c.repeats_after), f.interval(c.churned))
    return [
        _churn(f"Churn within {report.outcome_window_days:g} days after a journey, by the journey's silo handoffs",
               report.churn_after_journeys, counted="journeys"),
        survival, helped, effort, routed, changes,
    ]


def render(report: Report) -> Group:
    paths = titled_table(
        f"Top silo paths ({len(report.silo_paths)} of {report.silo_path_count})",
        "from → to", "handoffs", "re-explained", "repeat contact",
    )
    for p in report.silo_paths:
        paths.add_row(f"{p.from_department} → {p.to_department}", f.count(p.handoffs),
                      f.percent(p.reexplained_rate), f.percent(p.repeat_contact_rate))

    quality = titled_table("First-contact resolution and repeat contacts by month", "month", "journeys", "FCR",
                     "inbound touches", "repeat contacts", "repeat rate")
    for m in report.months:
        quality.add_row(f.month(m.month), f.count(m.journeys), f.percent(m.fcr), f.count(m.inbound_touches),
                        f.count(m.repeat_contacts), f.percent(m.repeat_contact_rate))

    longest = max((len(c.retained) for c in report.cohorts), default=0)
    milestones = [k for k in RETENTION_MILESTONES if k < longest]
    retention = titled_table("Retention by monthly cohort (share not churned by the end of month k)", "cohort",
                       "customers", *(f"m{k}" for k in milestones))
    for c in report.cohorts:
        shares = [f.percent(c.retained[k] / c.customers) if k < len(c.retained) else "" for k in milestones]
        retention.add_row(f.month(c.cohort), f.count(c.customers), *shares)

    changes = titled_table("Owner changes by reason", "reason", "changes")
    for reason, n in report.owner_changes_by_reason:
        changes.add_row(reason or "-", f.count(n))

    load = titled_table(f"Owner load (top {len(report.top_owners)} of {f.count(report.owners)} owners)",
                  "owner", "customers", "touches handled", "continuity")
    for o in report.top_owners:
        load.add_row(o.owner_id, f.count(o.customers), f.count(o.touches), f.percent(o.continuity))

    follow_ups = titled_table(
        f"Follow-up compliance (top {len(report.top_follow_up_owners)} of {f.count(report.follow_up_owners)} owners "
        "by follow-ups due)",
        "owner", "due", "done", "open", "dropped", "done rate", "median hours late", "owner-initiated",
    )
    for owner in report.top_follow_up_owners:
        follow_ups.add_row(
            owner.owner_id, f.count(owner.due), f.count(owner.done), f.count(owner.open), f.count(owner.dropped),
            f.percent(owner.done_rate), f.decimal(owner.median_hours_late), f.percent(owner.owner_initiated),
        )

    note = Text("Rates in brackets are 95% Wilson intervals: wide ones mean too few customers to tell.", style="dim")
    exposure = Text(EXPOSURE_NOTE, style="dim")
    return Group(
        _headline(report), *_answer(report), note, exposure,
        _churn("Churn by owner continuity over the whole life (%) (exposure, not effect)", report.churn_by_continuity),
        _churn("Churn by silo handoffs over the whole life (exposure, not effect)", report.churn_by_handoffs),
        paths, quality, retention, changes, load, follow_ups,
    )


PIPE_WIDTH = 250
"""Output to a file or pipe is not wrapped to 80 columns: tables keep their natural width up to this."""


def console() -> Console:
    """The terminal, reading no markup or emoji codes in what it prints: the text printed is data."""
    terminal = Console(markup=False, emoji=False)
    return terminal if terminal.is_terminal else Console(width=PIPE_WIDTH, markup=False, emoji=False)


def print_report(report: Report) -> None:
    console().print(render(report))
