"""A real HTTP server on loopback that receives webhooks and fails in scripted ways."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True)
class Attempt:
    path: str
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    at: float
    answered: int | None
    """The status sent, or None when the connection was cut or the answer came too late to count."""


class Receiver:
    """Endpoints (paths) and how they answer the n-th attempt of each webhook-id:

    ``/ok`` 200; ``/flaky`` 500 twice, then 200; ``/slow`` too slow once (beyond the
    sender's timeout), then 200; ``/reset`` connection cut once, then 200; ``/throttle``
    429 with ``Retry-After: 1`` once, then 200; ``/reject`` 400 for customers whose id
    ends in an even digit, else 200; ``/down`` always 503; ``/steady`` 200 after 20 ms.
    """

    SLOW_SECONDS = 3.0

    def __init__(self) -> None:
        self.attempts: list[Attempt] = []
        self._counts: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._lock = threading.Lock()
        self.port = 0

    def delivered(self, path: str) -> list[Attempt]:
        with self._lock:
            return [a for a in self.attempts if a.path == path and a.answered == 200]

    def tried(self, path: str) -> list[Attempt]:
        with self._lock:
            return [a for a in self.attempts if a.path == path]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        webhook_id = request.headers.get("webhook-id", "")
        path = request.path
        with self._lock:
            self._counts[(path, webhook_id)] += 1
            n = self._counts[(path, webhook_id)]
        status: int | None = 200
        headers: dict[str, str] = {}
        if path == "/flaky" and n <= 2:
            status = 500
        elif (path == "/slow" and n == 1) or (path == "/reset" and n == 1):
            status = None
        elif path == "/throttle" and n == 1:
            status, headers = 429, {"Retry-After": "1"}
        elif path == "/reject" and customer_of(body)[-1] in "02468":
            status = 400
        elif path == "/down":
            status = 503
        with self._lock:
            self.attempts.append(Attempt(path, webhook_id, dict(request.headers), body, time.monotonic(), status))
        if path == "/slow" and n == 1:
            await asyncio.sleep(self.SLOW_SECONDS)
            return web.Response(status=200)  # too late: the sender has given up on this attempt
        if path == "/reset" and n == 1:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=200)
        if path == "/steady":
            await asyncio.sleep(0.02)
        assert status is not None
        return web.Response(status=status, headers=headers)


def customer_of(body: bytes) -> str:
    import orjson

    return str(orjson.loads(body)["subject"])


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/{path}", receiver._handle)
    runner = web.AppRunner(app, access_log=None)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        receiver.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield receiver
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
