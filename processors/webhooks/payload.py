"""The webhook request for one owner change: a CloudEvents 1.0 JSON body, signed per Standard Webhooks."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from cloudevents.core.bindings.http import to_structured_event
from cloudevents.core.v1.event import CloudEvent
from standardwebhooks import Webhook

from ledger.errors import TerminalError
from schemas.ledger_messages import OwnerChangedV1

SOURCE = "/spoc-ledger/owner-changed"
EVENT_TYPES = {
    "OwnerAssigned": "io.spoc-ledger.owner.assigned.v1",
    "OwnerChanged": "io.spoc-ledger.owner.changed.v1",
}
_decode = msgspec.json.Decoder(OwnerChangedV1).decode


class InvalidOwnerChange(ValueError):
    """A message on ``spoc.owner-changed`` that is not an owner-changed v1 event."""


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """What every endpoint receives for one owner change (the signature is made per attempt)."""

    webhook_id: str
    customer_id: str
    body: bytes
    content_type: str


def webhook_event(value: bytes) -> WebhookEvent:
    """The CloudEvent for one ``spoc.owner-changed`` message; ``InvalidOwnerChange`` names what is wrong."""
    try:
        change = _decode(value)
    except msgspec.ValidationError as error:
        raise InvalidOwnerChange(f"not an owner-changed v1 event: {error}") from None
    except msgspec.DecodeError as error:
        raise InvalidOwnerChange(f"not JSON: {error}") from None
    event = CloudEvent(
        attributes={
            "id": change.ledger_event_id,
            "source": SOURCE,
            "type": EVENT_TYPES[change.event_type],
            "subject": change.customer_id,
            "time": change.occurred_at,
            "datacontenttype": "application/json",
        },
        data=msgspec.to_builtins(change),
    )
    message = to_structured_event(event)
    return WebhookEvent(change.ledger_event_id, change.customer_id, message.body, message.headers["content-type"])


class Signer:
    """Standard Webhooks headers; without a secret, the id and timestamp only."""

    def __init__(self, secret: str | None) -> None:
        self._webhook = None
        if secret is not None:
            try:
                self._webhook = Webhook(secret)
            except Exception as error:
                raise TerminalError(
                    f"the webhook secret is not a Standard Webhooks secret ({error}); use `whsec_` followed by "
                    "base64 of 24 to 64 random bytes, e.g. python -c \"import base64, os; "
                    "print('whsec_' + base64.b64encode(os.urandom(32)).decode())\""
                ) from None

    @property
    def signing(self) -> bool:
        return self._webhook is not None

    def headers(self, event: WebhookEvent, now: float | None = None) -> dict[str, str]:
        """Fresh for each attempt: receivers reject timestamps older than five minutes."""
        stamp = int(time.time() if now is None else now)
        headers = {"content-type": event.content_type, "webhook-id": event.webhook_id, "webhook-timestamp": str(stamp)}
        if self._webhook is not None:
            at = datetime.fromtimestamp(stamp, UTC)
            headers["webhook-signature"] = self._webhook.sign(event.webhook_id, at, event.body.decode())
        return headers
