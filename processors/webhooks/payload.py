"""The webhook request for one notice (an owner change, a follow-up, a handoff): a CloudEvents 1.0 JSON body, signed per
Standard Webhooks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from cloudevents.core.bindings.http import to_structured_event
from cloudevents.core.v1.event import CloudEvent
from standardwebhooks import Webhook

from ledger.errors import TerminalError
from processors.kafka.topics import FOLLOW_UPS, HANDOFFS, OWNER_CHANGED
from schemas.cloudevents import FOLLOW_UP_KIND, HANDOFF_KIND, OWNER_CHANGED_KIND, EventKind
from schemas.ledger_messages import FollowUpEventV1, HandoffEventV1, OwnerChangedV1


@dataclass(frozen=True)
class NoticeContract:
    """How one topic's messages become CloudEvents: their struct, its id field and the event kind."""

    struct: type[OwnerChangedV1] | type[FollowUpEventV1] | type[HandoffEventV1]
    name: str
    kind: EventKind
    """The CloudEvents ``source`` and ``type`` by the message's ``event_type`` (the topic's ``ce_*`` headers' too)."""
    webhook_id: Callable[[Any], str]


CONTRACTS = {
    OWNER_CHANGED: NoticeContract(
        OwnerChangedV1, "an owner-changed v1 event", OWNER_CHANGED_KIND, lambda change: change.ledger_event_id,
    ),
    FOLLOW_UPS: NoticeContract(
        FollowUpEventV1, "a follow-up v1 event", FOLLOW_UP_KIND, lambda notice: notice.idempotency_key,
    ),
    HANDOFFS: NoticeContract(
        HandoffEventV1, "a handoff v1 event", HANDOFF_KIND, lambda notice: notice.idempotency_key,
    ),
}
"""The topics ``spoc notify`` delivers."""


class InvalidNotice(ValueError):
    """A message that is not the topic's contract (a v1 owner change, follow-up or handoff)."""


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """What every endpoint receives for one notice (the signature is made per attempt)."""

    webhook_id: str
    customer_id: str
    body: bytes
    content_type: str


def webhook_event(value: bytes, topic: str = OWNER_CHANGED) -> WebhookEvent:
    """The CloudEvent for one message of ``topic``; ``InvalidNotice`` names what is wrong."""
    contract = CONTRACTS[topic]
    try:
        notice = msgspec.json.decode(value, type=contract.struct)
    except msgspec.ValidationError as error:
        raise InvalidNotice(f"not {contract.name}: {error}") from None
    except msgspec.DecodeError as error:
        raise InvalidNotice(f"not JSON: {error}") from None
    webhook_id = contract.webhook_id(notice)
    event = CloudEvent(
        attributes={
            "id": webhook_id,
            "source": contract.kind.source,
            "type": contract.kind.type_of(notice.event_type),
            "subject": notice.customer_id,
            "time": notice.occurred_at,
            "datacontenttype": "application/json",
        },
        data=msgspec.to_builtins(notice),
    )
    message = to_structured_event(event)
    return WebhookEvent(webhook_id, notice.customer_id, message.body, message.headers["content-type"])


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
