"""The report as one self-contained HTML page: plotly.js and every style embedded, nothing fetched."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2
import plotly.io as pio
from plotly.offline import get_plotlyjs

from reports import formatting as f
from reports.charts import all_charts
from reports.data import STABLE_OWNER_CONTINUITY, Report

WIDE_CHARTS = {"silo-paths", "cohort-retention"}
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


@dataclass(frozen=True, slots=True)
class Card:
    key: str
    label: str
    value: str
    detail: str = ""


def cards(report: Report) -> list[Card]:
    h = report.headline
    stable, unstable = h.churn_with_stable_owner, h.churn_without_stable_owner
    return [
        Card("customers", "customers", f.count(h.customers)),
        Card("touchpoints", "touchpoints", f.count(h.touchpoints), f"{f.count(h.rejected)} inputs rejected"),
        Card("owner-continuity", "owner continuity", f.percent(h.owner_continuity),
             "touches handled by the customer's person"),
        Card("silo-handoffs", "silo handoffs per 100 journeys", f.decimal(h.silo_handoffs_per_100_journeys),
             f"{f.count(h.silo_handoffs)} across {f.count(h.journeys)} journeys"),
        Card("fcr", "first-contact resolution", f.percent(h.fcr)),
        Card("churn-stable", "churn with a stable owner", f.percent(stable.rate),
             f"95% CI {f.interval(stable).partition(' ')[2] or f.MISSING}, n={f.count(stable.total)}"),
        Card("churn-unstable", "churn without one", f.percent(unstable.rate),
             f"95% CI {f.interval(unstable).partition(' ')[2] or f.MISSING}, n={f.count(unstable.total)}"),
        Card("follow-ups-done", "follow-ups done", f.percent(report.follow_ups.rate),
             f"of {f.count(report.follow_ups.total)} that fell due"),
        Card("owner-initiated", "owner-initiated touches", f.percent(report.owner_initiated.rate),
             "of the touches owners had with their customers"),
    ]


def render_html(report: Report, source: str) -> str:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"), autoescape=True, undefined=jinja2.StrictUndefined,
    )
    charts = [
        {"id": key, "wide": key in WIDE_CHARTS,
         "html": pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"chart-{key}",
                             config=PLOTLY_CONFIG, default_height=f"{fig.layout.height}px")}
        for key, fig in all_charts(report).items()
    ]
    return env.get_template("report.html").render(
        source=source, as_of=f.day(report.headline.as_of), cards=cards(report), charts=charts,
        stable_share=f"{STABLE_OWNER_CONTINUITY:.0%}", plotly_js=get_plotlyjs(),
    )


def write_html(report: Report, source: str, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report, source), encoding="utf-8")
    return path
