"""One way to write each kind of number, in the terminal and on the HTML page."""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any

from reports.stats import Proportion

MISSING = "–"

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNPRINTABLE_IN_A_CELL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Control characters (a terminal obeys them) and bidirectional overrides (they reorder what is shown)."""
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a CSV cell as a formula (OWASP's list)."""


def as_data(text: str, *, in_a_cell: bool = False) -> str:
    """``text`` as data for a terminal: each control or bidi character shown as its escape (``\\x1b``).

    ``in_a_cell``: a line break stays one (a table cell keeps it within its borders, as in EXPLAIN's plans).
    """
    unprintable = _UNPRINTABLE_IN_A_CELL if in_a_cell else _UNPRINTABLE
    return unprintable.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


def chart_text(text: str) -> str:
    """Data for a plotly label, which reads a subset of HTML (``<a href>``, ``<b>``): entities show as text."""
    return html.escape(text, quote=False)


def csv_cell(value: Any) -> Any:
    """A query value for CSV: a text a spreadsheet would run as a formula gets a leading ``'``."""
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_START) else value


def count(value: int | None) -> str:
    return MISSING if value is None else f"{value:,}"


def percent(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.1f}%"


def decimal(value: float | None) -> str:
    return MISSING if value is None else f"{value:,.1f}"


def month(value: datetime) -> str:
    return value.strftime("%Y-%m")


def day(value: datetime | None) -> str:
    return MISSING if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def interval(p: Proportion) -> str:
    """``12.3% [10.1–14.8%]``: the rate and its 95 % Wilson interval."""
    bounds = p.interval
    if bounds is None:
        return MISSING
    return f"{percent(p.rate)} [{100 * bounds[0]:.1f}–{100 * bounds[1]:.1f}%]"


def cell(value: Any) -> str:
    """Any value of a query result (``spoc sql``)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)
