"""POST one webhook event to one endpoint: retries with exponential backoff and full jitter
(tenacity) on 5xx, 408, 429, timeouts and connection errors, honouring ``Retry-After``;
no retry on other answers (a 4xx will not change by asking again)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from processors.webhooks.payload import Signer, WebhookEvent

log = logging.getLogger("spoc.notify")

RETRYABLE_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    budget_seconds: float = 300.0
    """No attempt starts later than this after the first one."""
    first_delay_seconds: float = 0.5
    max_delay_seconds: float = 60.0
    timeout_seconds: float = 10.0
    """Per attempt, connection to the whole answer."""


@dataclass(frozen=True)
class Endpoint:
    url: str

    @property
    def label(self) -> str:
        """The URL for logs and metrics: no credentials, no query string (tokens live there)."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    attempts: int
    error: str | None = None
    """The last error, when not delivered."""


class RetryableFailure(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentFailure(Exception):
    pass


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds to wait: a number of seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def failure_for(status: int, headers: Mapping[str, str]) -> RetryableFailure | PermanentFailure:
    """What a non-2xx answer means for the next attempt."""
    if status >= 500 or status in RETRYABLE_STATUSES:
        return RetryableFailure(f"HTTP {status}", retry_after_seconds(headers.get("Retry-After")))
    return PermanentFailure(f"HTTP {status} (not retried: fix the endpoint or the receiver, then replay the DLQ)")


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    backoff = wait_random_exponential(multiplier=policy.first_delay_seconds, max=policy.max_delay_seconds)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RetryableFailure) and error.retry_after is not None:
            return min(error.retry_after, policy.max_delay_seconds)
        return backoff(state)

    return wait


async def deliver(
    session: aiohttp.ClientSession, endpoint: Endpoint, event: WebhookEvent, signer: Signer, policy: RetryPolicy,
    on_retry: Callable[[str], None] = lambda _: None,
) -> Outcome:
    """Deliver until a 2xx, a permanent failure, or the retry budget is spent."""
    attempts = 0

    async def attempt() -> None:
        nonlocal attempts
        attempts += 1
        try:
            async with session.post(
                endpoint.url, data=event.body, headers=signer.headers(event), allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=policy.timeout_seconds),
            ) as response:
                await response.read()
                if not 200 <= response.status < 300:
                    raise failure_for(response.status, response.headers)
        except TimeoutError:
            raise RetryableFailure(f"no answer within {policy.timeout_seconds:g} s") from None
        except aiohttp.ClientError as error:
            raise RetryableFailure(f"connection failed: {error!r}") from None

    def before_sleep(state: RetryCallState) -> None:
        reason = str(state.outcome.exception()) if state.outcome else "?"
        on_retry(reason)
        log.warning(
            "webhook delivery failed; retrying",
            extra={"endpoint": endpoint.label, "webhook_id": event.webhook_id, "attempt": state.attempt_number,
                   "error": reason, "retry_in_seconds": round(state.upcoming_sleep, 3)},
        )

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts) | stop_before_delay(policy.budget_seconds),
        wait=_wait(policy),
        retry=retry_if_exception_type(RetryableFailure),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        await retrying(attempt)
    except (RetryableFailure, PermanentFailure) as failure:
        return Outcome(False, attempts, str(failure))
    return Outcome(True, attempts)
