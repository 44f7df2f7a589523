"""Timestamps given on the command line."""

from __future__ import annotations

from datetime import UTC, datetime

from ledger.errors import TerminalError


class UsageError(TerminalError):
    """The command line asks for something that cannot be done."""


def parse_timestamp(text: str) -> datetime:
    """RFC 3339 / ISO 8601; a date or a time without an offset is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise UsageError(f"not a timestamp: {text!r}; use e.g. 2024-06-30T00:00:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
