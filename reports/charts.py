"""The report's charts as plotly figures (rendered offline by the embedded plotly.js)."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reports import formatting as f
from reports.data import Bucket, Report

ACCENT = "#2563eb"
WARN = "#dc2626"
MUTED = "#94a3b8"
FONT = "system-ui, -apple-system, Segoe UI, sans-serif"


def _layout(fig: go.Figure, title: str, height: int = 380) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0, "xanchor": "left"}, height=height, template="plotly_white",
        font={"family": FONT, "size": 13}, margin={"l": 60, "r": 20, "t": 60, "b": 50},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def churn_buckets(buckets: tuple[Bucket, ...], title: str, axis: str) -> go.Figure:
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
    return _layout(fig, title)


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
    title = f"Top silo paths ({len(paths)} of {f.count(report.silo_path_count)})"
    return _layout(fig, title, height=max(320, 70 + 38 * len(paths)))


def quality_over_time(report: Report) -> go.Figure:
    months = [m.month for m in report.months]
    fig = go.Figure([
        go.Scatter(x=months, y=[m.fcr for m in report.months], mode="lines+markers", name="first-contact resolution",
                   line_color=ACCENT),
        go.Scatter(x=months, y=[m.repeat_contact_rate for m in report.months], mode="lines+markers",
                   name="repeat-contact rate (of inbound touches)", line_color=WARN),
    ])
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    fig.update_xaxes(dtick="M1", tickformat="%Y-%m")
    return _layout(fig, "First-contact resolution and repeat contacts by month")


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
    return _layout(fig, "Retention by monthly cohort (share not churned)", height=max(320, 120 + 28 * len(cohorts)))


def owner_load(report: Report) -> go.Figure:
    owners = report.top_owners
    ids = [f.chart_text(o.owner_id) for o in owners]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(
        x=ids, y=[o.customers for o in owners], marker_color=ACCENT, name="customers owned now",
        customdata=[f.count(o.touches) for o in owners],
        hovertemplate="%{x}: %{y} customers, %{customdata} touches handled<extra></extra>",
    ))
    fig.add_trace(go.Scatter(
        x=ids, y=[o.continuity for o in owners], mode="markers", marker={"color": WARN, "size": 9},
        name="continuity of their customers", hovertemplate="%{x}: continuity %{y:.1%}<extra></extra>",
    ), secondary_y=True)
    fig.update_xaxes(type="category")
    fig.update_yaxes(title="customers", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title="continuity", tickformat=".0%", range=[0, 1], dtick=0.25, showgrid=False, secondary_y=True)
    return _layout(fig, f"Owner load (top {len(owners)} of {f.count(report.owners)} owners)")


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
    title = f"Follow-up compliance (top {len(owners)} of {f.count(report.follow_up_owners)} owners by follow-ups due)"
    return _layout(fig, title)


def all_charts(report: Report) -> dict[str, go.Figure]:
    """Every chart of the page, by a stable id (the browser test checks each one rendered)."""
    return {
        "churn-by-continuity": churn_buckets(report.churn_by_continuity, "Churn by owner continuity",
                                             "share of touches handled by the customer's person (%)"),
        "churn-by-handoffs": churn_buckets(report.churn_by_handoffs, "Churn by silo handoffs",
                                           "silo handoffs the customer went through"),
        "silo-paths": silo_paths(report),
        "quality-over-time": quality_over_time(report),
        "owner-load": owner_load(report),
        "follow-up-compliance": follow_up_compliance(report),
        "cohort-retention": cohort_retention(report),
    }
