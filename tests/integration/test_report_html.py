"""The HTML report opened in real headless Chromium: every chart drawn, nothing fetched from the network."""

from __future__ import annotations

import base64
import csv
import io
from pathlib import Path

from playwright.sync_api import Request, Route, sync_playwright

from benchmarks.workload import generate
from projections.reading import read_analytics
from reports.charts import all_charts
from reports.data import gather
from reports.html import write_html
from tests.conftest import ROOT
from tests.replaying import run_replay

ARTIFACTS = ROOT / "test-artifacts"

# Marks a drawn plotly chart has: bars and markers are paths in a trace group, a heatmap is an image.
COUNT_MARKS = """section => ({
    svgs: section.querySelectorAll('svg.main-svg').length,
    marks: section.querySelectorAll('g.trace path.point, g.trace g.points path, g.trace path.js-line, g.hm image').length,
})"""


def test_every_chart_renders_offline(tmp_path: Path, chromium: str) -> None:
    source = tmp_path / "touchpoints.jsonl"
    source.write_bytes(b"\n".join(generate(4000, 300, seed=5, dirty=0.01)) + b"\n")
    db, _ = run_replay(tmp_path, [source])
    con = read_analytics(db)
    try:
        report = gather(con)
    finally:
        con.close()
    page_path = write_html(report, "report-test.duckdb", tmp_path / "report.html")

    requests: list[str] = []
    errors: list[str] = []

    def only_the_page(route: Route, request: Request) -> None:
        requests.append(request.url)
        if request.url == page_path.as_uri():
            route.continue_()
        else:
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.route("**/*", only_the_page)
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(page_path.as_uri(), wait_until="load")
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length > 0")
            sections = {
                key: page.locator(f'[data-chart="{key}"]').evaluate(COUNT_MARKS) for key in all_charts(report)
            }
            cards = page.locator("[data-headline]").count()
            downloads = {
                key: page.locator(f'[data-chart="{key}"] a[download]').get_attribute("href") for key in sections
            }
            continuity_ticks = page.locator('[data-chart="churn-by-continuity"] .xtick text').evaluate_all(
                "texts => texts.map(t => t.textContent)"
            )
            fetching = page.locator("script[src], link[href], img[src], iframe").count()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            browser.close()

    assert requests == [page_path.as_uri()], "the page must load nothing but itself"
    assert fetching == 0, "no element may point elsewhere"
    assert errors == []
    assert cards == 9
    panels = all_charts(report)
    assert list(panels)[:2] == ["churn-after-journeys", "continuity-survival"]  # the answer first
    for key, href in downloads.items():  # each panel's numbers download as CSV, from the page itself
        assert href is not None and href.startswith("data:text/csv;charset=utf-8;base64,")
        table = list(csv.reader(io.StringIO(base64.b64decode(href.partition(",")[2]).decode())))
        assert tuple(table[0]) == panels[key].columns and len(table) == 1 + len(panels[key].rows), key
    # Customers with no owner-era touch are set apart, not stretched along the continuity axis.
    assert continuity_ticks and not any("none" in tick for tick in continuity_ticks)
    for key, drawn in sections.items():
        assert drawn["svgs"] > 0, f"chart {key} has no SVG"
        assert drawn["marks"] > 0, f"chart {key} drew no marks"
    assert (ARTIFACTS / "report.png").stat().st_size > 50_000
