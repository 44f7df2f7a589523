"""The pure parts of ``spoc notify``: the payload, its signature, and what each answer means; the handoff
notice the worker makes from the core's touch facts."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from email.utils import format_datetime

import msgspec
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from ledger.errors import TerminalError
from processors.kafka.topics import FOLLOW_UPS, HANDOFFS
from processors.live.outputs import handoff_message
from processors.webhooks.delivery import (
    Endpoint,
    PermanentFailure,
    RetryableFailure,
    failure_for,
    retry_after_seconds,
)
from processors.webhooks.payload import CONTRACTS, InvalidNotice, Signer, webhook_event
from schemas.ledger_messages import (
    FollowUpEventV1,
    FollowUpWebhookV1,
    HandoffWebhookV1,
    OwnerChangedV1,
    OwnerChangedWebhookV1,
)
from spoc.cli import NOTICE_TOPICS
from tests.scenario import Scenario, day

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
CHANGE = OwnerChangedV1(
    ledger_event_id="rel-1:4", event_type="OwnerChanged", customer_id="cust-1", previous_owner_id="bil-003",
    owner_id="sup-011", reason="affinity", affinities={"sup-011": 4.71, "bil-003": 1.2}, trigger_event_id="tp-9",
    occurred_at=datetime(2024, 3, 2, 10, 15, tzinfo=UTC), relationship_id="rel-1", version=4,
)


def test_the_body_is_a_cloudevent_around_the_owner_change_as_documented() -> None:
    event = webhook_event(msgspec.json.encode(CHANGE))
    assert event.content_type == "application/cloudevents+json" and event.webhook_id == "rel-1:4"
    body = msgspec.json.decode(event.body, type=OwnerChangedWebhookV1)  # the published schema
    assert body.id == "rel-1:4" and body.subject == "cust-1" and body.type == "io.spoc-ledger.owner.changed.v1"
    assert body.time == CHANGE.occurred_at and body.data == CHANGE
    first = msgspec.structs.replace(CHANGE, event_type="OwnerAssigned")
    assert msgspec.json.decode(webhook_event(msgspec.json.encode(first)).body)["type"] == "io.spoc-ledger.owner.assigned.v1"


@pytest.mark.parametrize(
    ("value", "says"),
    [(b"{oops", "not JSON"), (b'{"ledger_event_id": "x"}', "missing required field"), (b"[]", "Expected `object`")],
)
def test_a_message_that_is_not_an_owner_change_is_named(value: bytes, says: str) -> None:
    with pytest.raises(InvalidNotice, match=says):
        webhook_event(value)


DUE = FollowUpEventV1(
    idempotency_key="f-1:due", event_type="FollowUpDue", follow_up_id="f-1", customer_id="cust-1", owner_id="sup-011",
    kind="after_issue", anchor_event_id="tp-7", journey_id="tp-5", due_at=datetime(2024, 3, 4, 10, tzinfo=UTC),
    occurred_at=datetime(2024, 3, 4, 11, tzinfo=UTC), closed_event_id=None,
)


@pytest.mark.parametrize(
    ("event_type", "cloudevent_type"),
    [("FollowUpDue", "io.spoc-ledger.follow-up.due.v1"), ("FollowUpDone", "io.spoc-ledger.follow-up.done.v1"),
     ("FollowUpDropped", "io.spoc-ledger.follow-up.dropped.v1")],
)
def test_a_follow_up_notice_is_a_cloudevent_whose_type_names_it(event_type: str, cloudevent_type: str) -> None:
    notice = msgspec.structs.replace(DUE, event_type=event_type, idempotency_key=f"f-1:{event_type}")
    event = webhook_event(msgspec.json.encode(notice), FOLLOW_UPS)
    body = msgspec.json.decode(event.body, type=FollowUpWebhookV1)  # the published schema
    assert (event.webhook_id, body.id, body.type, body.subject) == (f"f-1:{event_type}",) * 2 + (cloudevent_type, "cust-1")
    assert body.data == notice and body.time == notice.occurred_at


def test_an_owner_change_on_the_follow_ups_topic_is_named_as_not_a_follow_up() -> None:
    with pytest.raises(InvalidNotice, match="not a follow-up v1 event"):
        webhook_event(msgspec.json.encode(CHANGE), FOLLOW_UPS)


@pytest.mark.parametrize("warm", [False, True])
def test_a_handoff_is_a_cloudevent_naming_the_customer_s_owner_at_its_time(warm: bool) -> None:
    story = Scenario()
    story.resolved(day(0), "alice", department="billing")  # alice becomes the owner
    first = story.touch(day(5), "alice", department="billing", outcome="transferred", context_passed=warm)
    second = story.touch(day(5, hours=1), "bob", department="support")
    assert story.owner() == "alice"
    message = handoff_message(story.fact(second))
    event = webhook_event(msgspec.json.encode(message), HANDOFFS)
    body = msgspec.json.decode(event.body, type=HandoffWebhookV1)  # the published schema
    assert (event.webhook_id, body.id) == (f"{first}>{second}",) * 2
    assert (body.type, body.source, body.subject) == ("io.spoc-ledger.handoff.v1", "/spoc-ledger/handoffs", "c1")
    data = body.data
    assert (data.owner_id, data.kind, data.cross_department, data.reexplained) == ("alice", "transfer", True, not warm)
    assert (data.from_employee_id, data.to_employee_id, data.gap_seconds) == ("alice", "bob", 3600.0)
    assert body.time == data.occurred_at == day(5, hours=1)


def test_the_cli_offers_the_topics_notify_can_deliver() -> None:
    assert sorted(NOTICE_TOPICS) == sorted(CONTRACTS)


def test_the_signature_verifies_with_the_standard_library_and_only_for_the_same_bytes() -> None:
    event = webhook_event(msgspec.json.encode(CHANGE))
    headers = Signer(SECRET).headers(event)
    assert headers["webhook-id"] == "rel-1:4"
    assert Webhook(SECRET).verify(event.body, headers)["id"] == "rel-1:4"
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(event.body.replace(b"sup-011", b"sup-012"), headers)
    with pytest.raises(WebhookVerificationError, match="too old"):  # a replay ten minutes later
        Webhook(SECRET).verify(event.body, Signer(SECRET).headers(event, now=datetime.now().timestamp() - 600))
    unsigned = Signer(None).headers(event)
    assert "webhook-signature" not in unsigned and unsigned["webhook-id"] == "rel-1:4"


def test_a_secret_in_the_wrong_form_is_refused_with_how_to_make_one() -> None:
    with pytest.raises(TerminalError, match="whsec_"):
        Signer("whsec_not base64!")


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_server_errors_timeouts_and_throttling_are_retried(status: int) -> None:
    assert isinstance(failure_for(status, {}), RetryableFailure)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422, 301, 302])
def test_other_answers_are_not_retried(status: int) -> None:
    failure = failure_for(status, {})
    assert isinstance(failure, PermanentFailure) and f"HTTP {status}" in str(failure)


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after_seconds("7") == 7.0
    now = 1_700_000_000.0
    in_30s = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert retry_after_seconds(in_30s, now=now) == pytest.approx(30.0)
    assert retry_after_seconds(format_datetime(datetime.fromtimestamp(now - 5, UTC), usegmt=True), now=now) == 0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    failure = failure_for(429, {"Retry-After": "3"})
    assert isinstance(failure, RetryableFailure) and failure.retry_after == 3.0


def test_endpoints_are_logged_without_credentials_or_query_tokens() -> None:
    assert Endpoint("https://user:pw@hooks.example.com:8443/spoc?token=s3cret").label == "https://hooks.example.com:8443/spoc"


def test_a_secret_variable_that_is_not_set_is_named_with_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    from spoc.cli import main

    assert main(["notify", "--webhook", "http://127.0.0.1:1/", "--secret-env", "SPOC_TEST_UNSET_SECRET"]) == 2
    assert "export SPOC_TEST_UNSET_SECRET=whsec_" in capsys.readouterr().err
