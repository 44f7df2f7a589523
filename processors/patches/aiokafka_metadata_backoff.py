"""A pause after a failed metadata update in every aiokafka client of the process.

While the broker is away, callers that wait for a metadata update and then try again
at once (the consumer's fetcher while a partition has no leader, as during a broker's
shutdown) turn aiokafka's failed updates into a busy loop: ten thousand log lines a
second and a core burned (aiokafka issues #496 and #1155, still so in aiokafka 0.14).
Patched here: ``AIOKafkaClient._metadata_update`` (aiokafka 0.14), a private coroutine
method. A failed update waits the client's ``retry_backoff_ms`` before it reports back,
and every outcome goes to :data:`processors.kafka.outage.REACHABILITY`, which turns
the chatter into a few clear log lines.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.client import AIOKafkaClient

from processors.kafka import outage

_unpatched_metadata_update = AIOKafkaClient._metadata_update


async def _metadata_update_with_backoff(self: AIOKafkaClient, cluster_metadata: Any, topics: Any) -> bool:
    updated: bool = await _unpatched_metadata_update(self, cluster_metadata, topics)
    if updated:
        outage.REACHABILITY.update_succeeded()
    else:
        outage.REACHABILITY.update_failed()
        await asyncio.sleep(self._retry_backoff)
        # Try again once this update has reported back, until one succeeds: without it, a client whose
        # connections come back finds out (and says) only at the next periodic refresh, minutes later.
        asyncio.get_running_loop().call_soon(self.force_metadata_update)
    return updated


def install_metadata_backoff() -> None:
    """Make every aiokafka client in this process pause ``retry_backoff_ms`` after a failed metadata
    update, and report failures and recoveries to :data:`~processors.kafka.outage.REACHABILITY`.
    Idempotent."""
    AIOKafkaClient._metadata_update = _metadata_update_with_backoff
