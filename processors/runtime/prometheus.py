"""What every process's Prometheus registry has in common: ``spoc_build_info`` and no ``_created`` series.

prometheus_client writes a ``<name>_created`` sample (the creation time) beside every counter and
histogram, which doubles the series for nothing Prometheus reads from text exposition; it is turned
off once for the process here.
"""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, Gauge, disable_created_metrics, start_http_server

from ledger.errors import TerminalError
from processors.runtime.version import spoc_version

disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated


def new_registry(component: str) -> CollectorRegistry:
    """A registry with ``spoc_build_info{version, python, component} 1`` in it."""
    registry = CollectorRegistry()
    Gauge(
        "spoc_build_info", "The running build: its version, Python and which spoc process this is (always 1)",
        ["version", "python", "component"], registry=registry,
    ).labels(spoc_version(), platform.python_version(), component).set(1)
    return registry


def serve_metrics(port: int, host: str, registry: CollectorRegistry) -> None:
    """Serve ``/metrics`` on a thread (``port`` 0: not at all); a taken port is an error naming the flag."""
    if not port:
        return
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        raise TerminalError(
            f"cannot serve metrics on {host}:{port} ({error.strerror}); pass another --metrics-port, or 0 for none"
        ) from None
