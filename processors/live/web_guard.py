"""What the worker's HTTP server answers: the project's own routes, to holders of the token.

faust serves pages of its own next to ours (``/``, ``/router/``, ``/table/``: who holds which
partition, table contents); the worker turns off the ones faust lets it, and this middleware
refuses the rest.  With ``SPOC_HTTP_TOKEN`` set, every request must carry it as a bearer token
(but the probes ``/healthz`` and ``/readyz``, which say nothing about customers); workers forwarding an
``/owners`` or ``/route`` request to the partition's holder pass the header on.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web

HTTP_TOKEN_ENV = "SPOC_HTTP_TOKEN"
PROBES = ("/healthz", "/readyz")
"""Served without the token: orchestrators' probes carry none, and the answers name no customer."""
OWN_PATHS = ("/metrics", *PROBES)
OWN_PREFIXES = ("/owners/", "/route/")
"""Served: the paths exactly, and every path under the prefixes."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def guard(token: str | None) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """The middleware: 404 off the project's routes, 401 without the token (when there is one)."""
    expected = f"Bearer {token}".encode() if token else None

    @web.middleware
    async def only_own_routes(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path not in OWN_PATHS and not any(path.startswith(p) and len(path) > len(p) for p in OWN_PREFIXES):
            return web.json_response(
                {"error": "not found; this worker serves /owners/{customer_id}, /route/{customer_id}, /metrics, "
                          "/healthz and /readyz"},
                status=404,
            )
        if expected is not None and path not in PROBES:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return web.json_response(
                    {"error": f"missing or wrong bearer token (the worker's ${HTTP_TOKEN_ENV})"},
                    status=401, headers={"WWW-Authenticate": "Bearer"},
                )
        return await handler(request)

    return only_own_routes
