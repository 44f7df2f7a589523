"""Readers only read, and data is printed as data: `spoc sql`, `spoc owner` and `spoc report` on a
real DuckDB file holding hostile ids (Rich markup, terminal escapes, bidi overrides, formulas)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from spoc.cli import main
from tests.hostile_values import VALID
from tests.replaying import rows, run_replay, write_jsonl

LINK = "[link=https://example.com]click[/link]"
ESCAPE = "\x1b[31mred\x1b]8;;https://example.com\x07"
BIDI = "abc\u202edcba"
FORMULA = "=HYPERLINK(\"https://example.com\")"
ANCHOR = '<a href="https://example.com/a">anchor</a>'
SCRIPT = "<img src=x onerror=\"document.title='pwned'\">"
HOSTILE_IDS = (LINK, ESCAPE, BIDI, FORMULA, ANCHOR, SCRIPT)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each hostile id is a customer and that customer's owner (two resolved inbound touches)."""
    tmp = tmp_path_factory.mktemp("hostile-ids")
    events = [
        {**VALID, "event_id": f"{k}-{n}", "customer_id": hostile, "employee_id": hostile, "outcome": "resolved",
         "occurred_at": f"2024-03-0{n + 1}T10:00:00Z"}
        for k, hostile in enumerate(HOSTILE_IDS) for n in range(2)
    ]
    path, _ = run_replay(tmp, [write_jsonl(tmp / "hostile.jsonl", events)])
    assert {c for (c,) in rows(path, "SELECT customer_id FROM customer_owner WHERE owner_id = customer_id")} == set(HOSTILE_IDS)
    return path


def _unsafe(text: str) -> list[str]:
    """What a terminal would obey rather than show: escape, bell and bidi characters, and hyperlinks."""
    return [c for c in ("\x1b", "\x07", "\u202e") if c in text]


def test_spoc_sql_refuses_everything_but_queries_and_the_file_stays_as_it_was(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    (count,) = rows(db, "SELECT count(*) FROM touchpoints")[0]
    outside = tmp_path / "copied.csv"
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n")
    refused = {
        f"DETACH analytics; ATTACH '{db}' AS again; DELETE FROM again.touchpoints": "refused a DETACH statement",
        "DELETE FROM analytics.touchpoints": "refused a DELETE statement",
        f"COPY (SELECT * FROM touchpoints) TO '{outside}'": "refused a COPY statement",
        f"SELECT * FROM read_csv('{secret}')": "file system operations are disabled",
        "SELECT * FROM read_json('https://example.com/x.json')": "disabled",
        "SET enable_external_access = true": "refused a SET statement",
        "INSTALL httpfs": "refused",
        "EXPLAIN ANALYZE DELETE FROM analytics.touchpoints": "refused an EXPLAIN statement",
    }
    for query, why in refused.items():
        assert main(["sql", "--db", str(db), query]) == 2, query
        assert why in capsys.readouterr().err, query
    assert not outside.exists()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert main(["sql", "--db", str(db), "SELECT 1; SELECT count(*) AS n FROM touchpoints"]) == 0
    assert f"{count:,}" in capsys.readouterr().out


def test_spoc_sql_prints_hostile_values_as_data(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "--db", str(db), "SELECT DISTINCT customer_id FROM touchpoints ORDER BY 1"]) == 0
    out = capsys.readouterr().out
    assert not _unsafe(out)
    assert LINK in out  # shown as it is, not made a link
    assert "\\x1b[31mred\\x1b]8;;https://example.com\\x07" in out and "abc\\u202edcba" in out


def test_spoc_sql_csv_keeps_spreadsheets_from_running_formulas(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    query = "SELECT DISTINCT customer_id AS \"=id\", -5 AS n, '-5' AS t, '@x' AS a FROM touchpoints ORDER BY 1"
    assert main(["sql", "--db", str(db), "--csv", query]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "'=id,n,t,a"
    assert "\"'=HYPERLINK(\"\"https://example.com\"\")\",-5,'-5,'@x" in lines  # the number stays a number
    assert f"{ESCAPE},-5,'-5,'@x" in lines  # CSV is for programs: the text is exact


def test_spoc_owner_and_the_report_print_hostile_ids_as_data(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for hostile in HOSTILE_IDS:
        assert main(["owner", hostile, "--db", str(db)]) == 0
        out = capsys.readouterr().out
        assert not _unsafe(out), hostile
        shown = hostile.encode("unicode_escape").decode() if _unsafe(hostile) else hostile
        assert f"customer  {shown}" in out and f"owner     {shown}" in out
    assert main(["owner", ESCAPE + "-nobody", "--db", str(db)]) == 1
    assert not _unsafe(capsys.readouterr().out)
    assert main(["report", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert not _unsafe(out) and LINK in out and ANCHOR in out  # the owner load table names every owner


def test_the_html_report_shows_hostile_owner_ids_as_text(db: Path, tmp_path: Path, chromium: str) -> None:
    page_path = tmp_path / "report.html"
    assert main(["report", "--db", str(db), "--html", str(page_path)]) == 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.route("**/*", lambda route, request: route.continue_() if request.url == page_path.as_uri() else route.abort())
            page.goto(page_path.as_uri(), wait_until="load")
            page.wait_for_function("document.querySelectorAll('[data-chart=owner-load] .ytick').length > 0")
            ticks = page.locator("[data-chart=owner-load] .ytick text").all_text_contents()
            anchors = page.locator("a[href*='example.com'], [*|href*='example.com']").count()
            title = page.title()
        finally:
            browser.close()
    assert anchors == 0 and title != "pwned"
    assert ANCHOR in ticks and SCRIPT in ticks and LINK in ticks  # shown as written, not obeyed
