"""The report as one self-contained HTML page: plotly.js and every style embedded, nothing fetched."""

from __future__ import annotations

import base64
import csv
import io
from dataclasses import dataclass
from pathlib import Path

import jinja2
import plotly.io as pio
from plotly.offline import get_plotlyjs

from reports import formatting as f
from reports.charts import Panel, all_charts
from reports.data import EXPOSURE_NOTE, STABLE_OWNER_CONTINUITY, Report

WIDE_CHARTS = {"silo-paths", "cohort-retention", "follow-up-compliance", "owner-changes"}
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


def csv_text(panel: Panel) -> str:
    """The panel's numbers as CSV; text a spreadsheet would run as a formula is neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(panel.columns)
    writer.writerows([f.csv_cell(value) for value in row] for row in panel.rows)
    return out.getvalue()


def csv_link(panel: Panel) -> str:
    """A ``data:`` URI of :func:`csv_text`: the download needs nothing but the page.  Base64, so no id in
    the data reads as part of a URL."""
    return "data:text/csv;charset=utf-8;base64," + base64.b64encode(csv_text(panel).encode()).decode()


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
        {"id": key, "wide": key in WIDE_CHARTS, "title": panel.title, "note": panel.note,
         "columns": panel.columns, "rows": [[f.cell(value) for value in row] for row in panel.rows],
         "csv": csv_link(panel),
         "html": pio.to_html(panel.figure, full_html=False, include_plotlyjs=False, div_id=f"chart-{key}",
                             config=PLOTLY_CONFIG, default_height=f"{panel.figure.layout.height}px")}
        for key, panel in all_charts(report).items()
    ]
    return env.get_template("report.html").render(
        source=source, as_of=f.day(report.headline.as_of), cards=cards(report), charts=charts,
        stable_share=f"{STABLE_OWNER_CONTINUITY:.0%}", plotly_js=get_plotlyjs(), exposure_note=EXPOSURE_NOTE,
    )


def write_html(report: Report, source: str, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report, source), encoding="utf-8")
    return path
