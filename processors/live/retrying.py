"""Waiting out an outage of the ledger store or the broker: retry with backoff, log each wait."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import KafkaError
from eventsourcing.persistence import InterfaceError, OperationalError

from ledger.errors import TransientError

log = logging.getLogger("spoc.worker")

RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0

T = TypeVar("T")


def next_delay(delay: float) -> float:
    return min(delay * 2, RETRY_MAX_SECONDS)


async def retrying(what: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """Await ``attempt()`` until it stops failing for a reason that can pass (an outage)."""
    delay = RETRY_FIRST_SECONDS
    while True:
        try:
            return await attempt()
        except (OperationalError, InterfaceError, KafkaError, TransientError) as error:
            log.warning(f"{what} unavailable; retrying", extra={"error": repr(error), "retry_in_seconds": delay})
            await asyncio.sleep(delay)
            delay = next_delay(delay)
