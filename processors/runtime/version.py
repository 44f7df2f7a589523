"""The installed distribution's version (a checkout installed with ``pip install -e .`` has one too)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

UNKNOWN = "unknown (not installed: pip install -e .)"


def spoc_version() -> str:
    try:
        return version("spoc-ledger")
    except PackageNotFoundError:
        return UNKNOWN
