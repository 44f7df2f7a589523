"""Riding out a Kafka outage: a pause between failed metadata updates, and a few clear log lines.

While the broker is away, aiokafka logs ``Unable connect to node …`` and ``Unable to
update metadata …`` for every attempt.  Callers that wait for a metadata update and
then try again at once (the consumer's fetcher while a partition has no leader, as
during a broker's shutdown) turn that into a busy loop: our broker outage test once
logged ten thousand such lines a second and burned a core (aiokafka issues #496,
#1155).  So here a failed update waits ``retry_backoff_ms`` before it reports back,
and the chatter becomes one warning once the broker has been unreachable for
:data:`LOST_AFTER_SECONDS`, a reminder every :data:`REMIND_EVERY_SECONDS`, and one
line when an update succeeds again (a client keeps trying one every ``retry_backoff_ms``
until then).  The pause itself is a patch of aiokafka's client
(:mod:`processors.patches.aiokafka_metadata_backoff`), which reports to
:data:`REACHABILITY`; the ``spoc`` commands that talk to Kafka install it.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("spoc.kafka")

LOST_AFTER_SECONDS = 1.0
"""Failures for less than this (a connection closed and reopened) are not an outage."""
REMIND_EVERY_SECONDS = 30.0
CAUSES = ("Unable connect to", "Unable to request metadata")
"""aiokafka's client messages (the ``aiokafka`` logger) for a broker it cannot reach: the cause to quote."""
FAILURES = (*CAUSES, "Unable to update metadata")
ECHOES = ("Failed fetch messages from", "Group Coordinator Request failed")
"""aiokafka's consumer messages that, during a known outage, say nothing new."""


class BrokerReachability(logging.Filter):
    """Whether this process's Kafka clients reach the broker, said in a few log lines.

    As a filter on the log handler it swallows aiokafka's per-attempt connection
    errors (keeping the latest as the cause to quote) and, during an outage, the
    consumer's echoes of them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.failing_since: float | None = None
        self.lost = False
        self.failures = 0
        self.last_error = "no connection"
        self._reminded_at = 0.0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka"):
            return True
        message = record.msg if isinstance(record.msg, str) else ""
        if record.name == "aiokafka" and message.startswith(FAILURES):
            if message.startswith(CAUSES):
                self.last_error = record.getMessage()
            return False
        return not (self.failing_since is not None and message.startswith(ECHOES))

    def update_failed(self) -> None:
        with self._lock:
            now = time.monotonic()
            if self.failing_since is None:
                self.failing_since, self.failures = now, 0
            self.failures += 1
            down_for = now - self.failing_since
            if not self.lost and down_for >= LOST_AFTER_SECONDS:
                self.lost, self._reminded_at = True, now
                log.warning(
                    "Kafka broker unreachable (%s); retrying until it is back, nothing is lost meanwhile "
                    "(check that the broker is running and reachable at the bootstrap address)", self.last_error,
                )
            elif self.lost and now - self._reminded_at >= REMIND_EVERY_SECONDS:
                self._reminded_at = now
                log.warning(
                    "Kafka broker still unreachable after %.0f s (%d failed attempts; last: %s)",
                    down_for, self.failures, self.last_error,
                )

    def update_succeeded(self) -> None:
        # Clients on several threads may reconnect at once: one of them says so.
        with self._lock:
            lost, since, failures = self.lost, self.failing_since, self.failures
            self.failing_since, self.lost = None, False
        if lost and since is not None:
            down_for = time.monotonic() - since
            log.warning(
                "Kafka broker reachable again after %.1f s (%d failed attempts); resuming where we stopped",
                down_for, failures, extra={"outage_seconds": round(down_for, 1), "failed_attempts": failures},
            )


REACHABILITY = BrokerReachability()


def reachability_filter() -> BrokerReachability:
    """The process's one :class:`BrokerReachability`, for ``logging.config.dictConfig``."""
    return REACHABILITY
