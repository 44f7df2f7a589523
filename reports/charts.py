"""The report's charts as plotly figures (rendered offline by the embedded plotly.js), each in a panel
with its title and the numbers it draws as a table (shown beside it and offered as CSV)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reports import formatting as f
from reports.data import SURVIVAL_DAYS, Bucket, Report


@dataclass(frozen=True, slots=True)
class Panel:
    """A chart and the numbers it draws: ``columns`` and ``rows`` of raw values."""

    title: str
    figure: go.Figure
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    note: str = ""

ACCENT = "#2563eb"
WARN = "#dc2626"
GOOD = "#16a34a"
PALE = "#cbd5e1"
MUTED = "#94a3b8"
FONT = "system-ui, -apple-system, Segoe UI, sans-serif"


def _layout(fig: go.Figure, height: int = 380, left: int = 60) -> go.Figure:
    """The house style; the title is the panel's (HTML), so plotly's toolbar never covers it."""
    fig.update_layout(
        height=height, template="plotly_white",
        font={"family": FONT, "size": 13}, margin={"l": left, "r": 20, "t": 30, "b": 50},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def _churn_rows(buckets: tuple[Bucket, ...]) -> tuple[tuple[Any, ...], ...]:
    return tuple(
        (b.bucket, b.churn.total, b.churn.hits, b.churn.rate, *(b.churn.interval or (None, None))) for b in buckets
    )


CHURN_COLUMNS = ("bucket", "n", "churned", "churn_rate", "ci_low", "ci_high")


def churn_panel(buckets: tuple[Bucket, ...], title: str, axis: str, apart: str | None = None) -> Panel:
    """Churn per bucket; the bucket ``apart`` (no data on the axis's scale) is left off the chart and
    named under it, but kept in the table."""
    drawn = tuple(b for b in buckets if b.bucket != apart)
    note = ""
    for b in buckets:
        if b.bucket == apart:
            note = f"Not drawn: {apart} (n={f.count(b.churn.total)}, churn {f.interval(b.churn)})."
    return Panel(title, churn_buckets(drawn, axis), CHURN_COLUMNS, _churn_rows(buckets), note)


def churn_buckets(buckets: tuple[Bucket, ...], axis: str) -> go.Figure:
    """Churn rate per bucket with its 95 % Wilson interval and the bucket's size on the bar."""
    rates = [b.churn.rate for b in buckets]
    intervals = [b.churn.interval or (0.0, 0.0) for b in buckets]
    fig = go.Figure(go.Bar(
        x=[f"{b.bucket}<br>n={f.count(b.churn.total)}" for b in buckets],
        y=rates,
        marker_color=ACCENT,
        error_y={
            "type": "data", "symmetric": False, "color": "#334155",
            "array": [hi - (r or 0.0) for r, (_, hi) in zip(rates, intervals)],
            "arrayminus": [(r or 0.0) - lo for r, (lo, _) in zip(rates, intervals)],
        },
        customdata=[[f.interval(b.churn), b.churn.hits] for b in buckets],
        hovertemplate="%{x}: %{customdata[0]}<br>%{customdata[1]} churned<extra></extra>",
    ))
    fig.update_yaxes(title="churn rate (95% Wilson CI)", tickformat=".0%", rangemode="tozero")
    fig.update_xaxes(title=axis, type="category")
    return _layout(fig)


def continuity_survival(report: Report) -> Panel:
    """Kaplan-Meier survival after the landmark, one line per early-continuity bucket."""
    colors = {"0-25": WARN, "25-50": "#f97316", "50-75": "#22c55e", "75-100": ACCENT, "none": MUTED}
    fig = go.Figure([
        go.Scatter(
            x=[0, *SURVIVAL_DAYS], y=[1.0, *b.survival], mode="lines+markers", name=f"{b.bucket} (n={f.count(b.customers)})",
            line={"color": colors.get(b.bucket, MUTED), "shape": "hv"}, connectgaps=False,
            hovertemplate=f"{b.bucket}: %{{y:.1%}} kept %{{x}} days after the landmark<extra></extra>",
        )
        for b in report.continuity_survival if b.customers
    ])
    fig.update_yaxes(title="still customers (Kaplan-Meier)", tickformat=".0%", range=[0, 1.02])
    fig.update_xaxes(title="days after the landmark", tickvals=[0, *SURVIVAL_DAYS])
    title = (f"Survival by owner continuity in the first {report.landmark_days:g} days with an owner "
             "(followed from then on)")
    rows = tuple((b.bucket, b.customers, b.churned, *b.survival) for b in report.continuity_survival)
    columns = ("bucket", "customers", "churned", *(f"survival_{d}d" for d in SURVIVAL_DAYS))
    return Panel(title, _layout(fig), columns, rows, "A missing point: nobody of that bucket was followed so long yet.")


def help_first(report: Report) -> Panel:
    """Per department, the share of inbound touches it resolved rather than passed on."""
    departments = list(reversed(report.help_first))  # plotly draws the first category at the bottom
    labels = [f.chart_text(d.department) for d in departments]
    fig = go.Figure(go.Bar(
        y=labels, x=[d.help_first_rate for d in departments], orientation="h", marker_color=ACCENT,
        customdata=[[f.count(d.resolved), f.count(d.passed_on)] for d in departments],
        hovertemplate="%{y}: %{x:.1%} resolved (%{customdata[0]}), %{customdata[1]} passed on<extra></extra>",
    ))
    fig.update_xaxes(title="resolved / (resolved + transferred + redirected)", tickformat=".0%", range=[0, 1])
    fig.update_yaxes(type="category", automargin=True)
    rows = tuple(
        (d.department, d.handled, d.resolved, d.passed_on, d.help_first_rate, d.resolved_outside_home)
        for d in report.help_first
    )
    columns = ("department", "handled", "resolved", "passed_on", "help_first_rate", "resolved_outside_home")
    return Panel("Help first, transfer second: inbound touches resolved by the department that took them",
                 _layout(fig, height=max(260, 90 + 34 * len(departments)), left=110), columns, rows)


def effort(report: Report) -> Panel:
    """The hurdles a journey put in the customer's way, as shares of all journeys."""
    e = report.effort
    hurdles = (("a redirect (reach out again yourself)", e.with_redirect), ("a channel switch", e.with_channel_switch),
               ("a self-service dead end", e.with_dead_end))
    fig = go.Figure(go.Bar(
        y=[label for label, _ in reversed(hurdles)], x=[share for _, share in reversed(hurdles)], orientation="h",
        marker_color=WARN, hovertemplate="%{y}: %{x:.1%} of journeys<extra></extra>",
    ))
    fig.update_xaxes(title="share of journeys with at least one", tickformat=".0%", rangemode="tozero")
    fig.update_yaxes(type="category", automargin=True)
    columns = ("journeys", "mean_touches", "with_redirect", "with_channel_switch", "with_dead_end",
               "median_hours_to_resolve")
    row = (e.journeys, e.mean_touches, e.with_redirect, e.with_channel_switch, e.with_dead_end, e.median_hours_to_resolve)
    note = (f"{f.count(e.journeys)} journeys, {f.decimal(e.mean_touches)} touches each on average; "
            f"median {f.decimal(e.median_hours_to_resolve)} hours to resolve.")
    return Panel("Customer effort: the hurdles in their journeys", _layout(fig, height=260, left=60), columns, (row,), note)


def routing(report: Report) -> Panel:
    """Where customers' inbound touches would have gone by SPEC §9 (to their owner, or a fallback), and how many
    transfers were warm."""
    r = report.routing
    with_owner = r.inbound - r.no_owner
    calls, transfers = "calls from customers<br>with an owner", "transfers"
    bars = (
        (calls, "reached the owner", r.owner_available, with_owner, ACCENT),
        (calls, "fallback: owner away", r.owner_away, with_owner, WARN),
        (calls, "fallback: owner departed", r.owner_departed, with_owner, MUTED),
        (transfers, "warm (context passed on)", r.warm_transfers, r.transfers, GOOD),
        (transfers, "cold (explained again)", r.transfers - r.warm_transfers, r.transfers, PALE),
    )
    fig = go.Figure([
        go.Bar(y=[row], x=[n / total if total else None], name=label, orientation="h", marker_color=colour,
               hovertemplate=f"{label}: %{{x:.1%}} ({f.count(n)})<extra></extra>")
        for row, label, n, total, colour in bars
    ])
    fig.update_xaxes(title="share", tickformat=".0%", range=[0, 1])
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=[transfers, calls], automargin=True)
    _layout(fig, height=300, left=150)
    fig.update_layout(barmode="stack", legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0,
                                               "traceorder": "normal"},
                      margin={"t": 70})
    columns = ("inbound", "no_owner", "owner_available", "owner_away", "owner_departed", "transfers", "warm_transfers")
    row = (r.inbound, r.no_owner, r.owner_available, r.owner_away, r.owner_departed, r.transfers, r.warm_transfers)
    note = (f"{f.count(r.inbound)} inbound touches; {f.count(r.no_owner)} from customers with no owner yet go to a "
            f"department. {f.percent(r.to_owner.rate)} of the others would have reached their owner. "
            f"{f.percent(r.warm.rate)} of {f.count(r.transfers)} transfers were warm.")
    return Panel("Routing to the owner: where calls would have gone, and warm transfers", fig, columns, (row,), note)


def owner_changes(report: Report) -> Panel:
    """Per reason for a change of person: satisfaction and repeat contacts before and after, churn after."""
    changes = report.owner_change_outcomes
    reasons = [f.chart_text(c.reason) for c in changes]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.12,
                        subplot_titles=("mean csat", "churned within the window"))
    for name, values, color in (("before", [c.mean_csat_before for c in changes], MUTED),
                                ("after", [c.mean_csat_after for c in changes], ACCENT)):
        fig.add_trace(go.Bar(x=reasons, y=values, name=f"csat {name}", marker_color=color,
                             hovertemplate=f"%{{x}}: csat %{{y:.2f}} {name}<extra></extra>"), row=1, col=1)
    rates = [c.churned.rate for c in changes]
    intervals = [c.churned.interval or (0.0, 0.0) for c in changes]
    fig.add_trace(go.Bar(
        x=reasons, y=rates, marker_color=WARN, showlegend=False,
        error_y={"type": "data", "symmetric": False, "color": "#334155",
                 "array": [hi - (r or 0.0) for r, (_, hi) in zip(rates, intervals)],
                 "arrayminus": [(r or 0.0) - lo for r, (lo, _) in zip(rates, intervals)]},
        customdata=[[f.interval(c.churned), f.count(c.churned.total)] for c in changes],
        hovertemplate="%{x}: %{customdata[0]} of %{customdata[1]}<extra></extra>",
    ), row=1, col=2)
    fig.update_yaxes(range=[1, 5], row=1, col=1)
    fig.update_yaxes(tickformat=".0%", rangemode="tozero", row=1, col=2)
    fig.update_xaxes(type="category")
    fig.update_layout(barmode="group")
    columns = ("reason", "changes", "mean_csat_before", "mean_csat_after", "repeats_before", "repeats_after",
               "churned", "judged", "churn_rate")
    rows = tuple(
        (c.reason, c.changes, c.mean_csat_before, c.mean_csat_after, c.repeats_before, c.repeats_after,
         c.churned.hits, c.churned.total, c.churned.rate)
        for c in changes
    )
    title = f"What followed owner changes ({report.outcome_window_days:g} days before and after each)"
    return Panel(title, _layout(fig), columns, rows)


def silo_paths(report: Report) -> go.Figure:
    """The busiest department-to-department handoffs, with how often people re-explained and came back."""
    paths = list(reversed(report.silo_paths))  # plotly draws the first category at the bottom
    labels = [f.chart_text(f"{p.from_department} → {p.to_department}") for p in paths]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, column_widths=[0.5, 0.5], horizontal_spacing=0.04,
                        subplot_titles=("silo handoffs", "share of those handoffs"))
    fig.add_trace(go.Bar(y=labels, x=[p.handoffs for p in paths], orientation="h", marker_color=ACCENT,
                         name="handoffs", showlegend=False), row=1, col=1)
    fig.add_trace(go.Bar(y=labels, x=[p.reexplained_rate for p in paths], orientation="h", marker_color=MUTED,
                         name="customer re-explained"), row=1, col=2)
    fig.add_trace(go.Bar(y=labels, x=[p.repeat_contact_rate for p in paths], orientation="h", marker_color=WARN,
                         name="repeat contact"), row=1, col=2)
    fig.update_xaxes(tickformat=".0%", range=[0, 1], row=1, col=2)
    fig.update_layout(barmode="group")
    fig.update_yaxes(automargin=True)
    return _layout(fig, height=max(320, 70 + 38 * len(paths)))


def quality_over_time(report: Report) -> go.Figure:
    months = [f.month(m.month) for m in report.months]
    fig = go.Figure([
        go.Scatter(x=months, y=[m.fcr for m in report.months], mode="lines+markers", name="first-contact resolution",
                   line_color=ACCENT),
        go.Scatter(x=months, y=[m.repeat_contact_rate for m in report.months], mode="lines+markers",
                   name="repeat-contact rate (of inbound touches)", line_color=WARN),
    ])
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    # Months are categories: a date axis puts each at its first instant and clips the last one's marker.
    fig.update_xaxes(type="category")
    return _layout(fig)


def cohort_retention(report: Report) -> go.Figure:
    longest = max((len(c.retained) for c in report.cohorts), default=0)
    cohorts = [c for c in report.cohorts if c.retained]
    shares = [[r / c.customers for r in c.retained] + [None] * (longest - len(c.retained)) for c in cohorts]
    fig = go.Figure(go.Heatmap(
        z=shares,
        x=[f"m{k}" for k in range(longest)],
        y=[f"{f.month(c.cohort)} (n={f.count(c.customers)})" for c in cohorts],
        colorscale="Blues", zmin=0, zmax=1, colorbar={"tickformat": ".0%"},
        texttemplate="%{z:.0%}", hovertemplate="%{y}, month %{x}: %{z:.1%} retained<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title="months after the first touch", type="category")
    return _layout(fig, height=max(320, 120 + 28 * len(cohorts)))


def owner_load(report: Report) -> go.Figure:
    """Customers per owner as horizontal bars (long ids stay readable), their customers' continuity beside."""
    owners = list(reversed(report.top_owners))  # the busiest on top
    ids = [f.chart_text(o.owner_id) for o in owners]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, column_widths=[0.6, 0.4], horizontal_spacing=0.04,
                        subplot_titles=("customers owned now", "continuity of their customers"))
    fig.add_trace(go.Bar(
        y=ids, x=[o.customers for o in owners], orientation="h", marker_color=ACCENT, showlegend=False,
        customdata=[f.count(o.touches) for o in owners],
        hovertemplate="%{y}: %{x} customers, %{customdata} touches handled<extra></extra>",
    ), row=1, col=1)
    fig.add_trace(go.Scatter(
        y=ids, x=[o.continuity for o in owners], mode="markers", marker={"color": WARN, "size": 9}, showlegend=False,
        hovertemplate="%{y}: continuity %{x:.1%}<extra></extra>",
    ), row=1, col=2)
    fig.update_yaxes(type="category", automargin=True)
    fig.update_xaxes(tickformat=".0%", range=[0, 1], row=1, col=2)
    return _layout(fig, height=max(320, 70 + 24 * len(owners)))


def follow_up_compliance(report: Report) -> go.Figure:
    """Per owner, the follow-ups that fell due by how they stand, and the share of contact the owner started."""
    owners = report.top_follow_up_owners
    ids = [f.chart_text(c.owner_id) for c in owners]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for name, values, color in (
        ("done", [c.done for c in owners], ACCENT), ("open", [c.open for c in owners], WARN),
        ("dropped", [c.dropped for c in owners], MUTED),
    ):
        fig.add_trace(go.Bar(x=ids, y=values, name=name, marker_color=color,
                             hovertemplate=f"%{{x}}: %{{y}} {name}<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=ids, y=[c.owner_initiated for c in owners], mode="markers", marker={"color": "#0f172a", "size": 9},
        name="owner-initiated touches", hovertemplate="%{x}: %{y:.1%} of their touches started by them<extra></extra>",
    ), secondary_y=True)
    fig.update_layout(barmode="stack")
    fig.update_xaxes(type="category")
    fig.update_yaxes(title="follow-ups due", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title="owner-initiated", tickformat=".0%", range=[0, 1], showgrid=False, secondary_y=True)
    return _layout(fig)


def all_charts(report: Report) -> dict[str, Panel]:
    """Every panel of the page, by a stable id (the browser test checks each one rendered), the answer first."""
    longest = max((len(c.retained) for c in report.cohorts), default=0)
    return {
        "churn-after-journeys": churn_panel(
            report.churn_after_journeys, f"Churn within {report.outcome_window_days:g} days after a journey, by the journey's silo handoffs",
            "silo handoffs in the journey (n = journeys)"),
        "continuity-survival": continuity_survival(report),
        "help-first": help_first(report),
        "effort": effort(report),
        "routing": routing(report),
        "owner-changes": owner_changes(report),
        "silo-paths": Panel(
            f"Top silo paths ({len(report.silo_paths)} of {f.count(report.silo_path_count)})", silo_paths(report),
            ("from_department", "to_department", "handoffs", "reexplained_rate", "repeat_contact_rate"),
            tuple((p.from_department, p.to_department, p.handoffs, p.reexplained_rate, p.repeat_contact_rate)
                  for p in report.silo_paths)),
        "quality-over-time": Panel(
            "First-contact resolution and repeat contacts by month", quality_over_time(report),
            ("month", "journeys", "fcr", "inbound_touches", "repeat_contacts", "repeat_contact_rate"),
            tuple((f.month(m.month), m.journeys, m.fcr, m.inbound_touches, m.repeat_contacts, m.repeat_contact_rate)
                  for m in report.months),
            "The newest month's FCR can still fall: a repeat contact may yet come."),
        "owner-load": Panel(
            f"Owner load (top {len(report.top_owners)} of {f.count(report.owners)} owners)", owner_load(report),
            ("owner_id", "customers", "touches", "continuity"),
            tuple((o.owner_id, o.customers, o.touches, o.continuity) for o in report.top_owners)),
        "follow-up-compliance": Panel(
            f"Follow-up compliance (top {len(report.top_follow_up_owners)} of {f.count(report.follow_up_owners)} "
            "owners by follow-ups due)", follow_up_compliance(report),
            ("owner_id", "due", "done", "open", "dropped", "done_rate", "median_hours_late", "owner_initiated"),
            tuple((c.owner_id, c.due, c.done, c.open, c.dropped, c.done_rate, c.median_hours_late, c.owner_initiated)
                  for c in report.top_follow_up_owners)),
        "churn-by-continuity": churn_panel(
            report.churn_by_continuity, "Churn by owner continuity over the whole life (exposure, not effect)",
            "share of touches handled by the customer's person (%)", apart="none"),
        "churn-by-handoffs": churn_panel(
            report.churn_by_handoffs, "Churn by silo handoffs over the whole life (exposure, not effect)",
            "silo handoffs the customer went through"),
        "cohort-retention": Panel(
            "Retention by monthly cohort (share not churned)", cohort_retention(report),
            ("cohort", "customers", *(f"retained_m{k}" for k in range(longest))),
            tuple((f.month(c.cohort), c.customers, *c.retained, *[None] * (longest - len(c.retained)))
                  for c in report.cohorts)),
    }
