"""One way to write each kind of number, in the terminal and on the HTML page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reports.stats import Proportion

MISSING = "–"


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
