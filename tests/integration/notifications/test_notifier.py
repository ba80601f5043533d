"""The notifier: each (event, recipient) sent at most once, whatever the redeliveries, their
concurrency, SES's failures or a sender dying half-way; a permanent failure ends in the DLQ.

DynamoDB is DynamoDB Local (the markers' conditional writes are the real ones); SES is a
recording mailer that can be told to fail; the DLQ path runs the local stack's own rule source
(`local.sources.RuleSource`, Lambda's asynchronous retries and OnFailure) over moto's bus and
queues."""

from __future__ import annotations

import copy
import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.notifier import app
from lifecycle.notifications import delivery
from lifecycle.notifications.delivery import NotDelivered
from lifecycle.notifications.mailer import EmailNotSent
from lifecycle.notifications.render import Email
from lifecycle.observability import logger
from lifecycle.rules.users import User, UserChange, UserStatus
from local.events import LambdaContext
from local.sources import RuleSource, rule_targets
from tests.factories import T0, add_account
from tests.log_scan import Collector, findings

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).parents[3] / "events" / "eventbridge" / "charge-succeeded.json"
BILLING = [("usr_ann", "ann@merchant.example"), ("usr_bob", "bob@merchant.example")]
MEMBER = ("usr_cat", "cat@merchant.example")


@dataclass
class RecordingMailer:
    """SES as a list: what was sent, and failures to raise first (in order)."""

    failures: list[Exception] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, *, sender: str, to: str, email: Email, event_id: str, tag: str) -> str:
        with self._lock:
            self.attempts += 1
            if self.failures:
                raise self.failures.pop(0)
            self.sent.append({"to": to, "subject": email.subject, "event_id": event_id})
            return f"msg-{len(self.sent)}"

    def to(self) -> list[str]:
        return sorted(item["to"] for item in self.sent)


@pytest.fixture
def mailer(monkeypatch) -> RecordingMailer:
    recording = RecordingMailer()
    monkeypatch.setattr(app, "_mailer", lambda: recording)
    return recording


@pytest.fixture
def account(services):
    add_account(services.store, "acc_1")
    for (user_id, email), billing in [*((u, True) for u in BILLING), (MEMBER, False)]:
        user = User(user_id, "acc_1", f"sub-{user_id}", email, billing, UserStatus.ACTIVE, T0)
        services.store.save_user_change(UserChange(None, user, billing_delta=int(billing)))
    return "acc_1"


def receipt_event() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


def reminder_event() -> dict[str, Any]:
    event = receipt_event()
    event["detail-type"] = "DeletionReminder"
    event["detail"] = {
        "event_id": "int_1:reminder:2026-12-21T10:00:00Z:0",
        "account_id": "acc_1",
        "at": "2026-12-18T10:00:00Z",
        "integration_id": "int_1",
        "name": "Acme Supply to Shopify",
        "deletes_at": "2026-12-21T10:00:00Z",
        "sync_enabled": True,
    }
    return event


def notify(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = app.lambda_handler(copy.deepcopy(event), LambdaContext("notifier"))
    return result


def test_a_receipt_goes_to_each_billing_user_once_and_not_to_members(account, mailer):
    assert notify(receipt_event()) == {"sent": 2, "already": 0}

    assert mailer.to() == sorted(email for _, email in BILLING)
    assert {m["subject"] for m in mailer.sent} == {"Receipt R-1-0001: 49.00 USD paid"}
    assert {m["event_id"] for m in mailer.sent} == {"ch_01JDEMO0000000000000000001:succeeded:0"}


def test_the_same_event_delivered_ten_times_sends_one_email_per_recipient(account, mailer):
    results = [notify(reminder_event()) for _ in range(10)]

    assert results[0] == {"sent": 3, "already": 0}
    assert results[1:] == [{"sent": 0, "already": 3}] * 9
    assert mailer.to() == sorted([email for _, email in BILLING] + [MEMBER[1]])


def test_twenty_deliveries_at_once_send_one_email_per_recipient(account, mailer):
    barrier = threading.Barrier(20)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        barrier.wait()
        try:
            results.append(notify(reminder_event()))
        except BaseException as error:  # collected: asserted below
            errors.append(error)

    threads = [threading.Thread(target=deliver) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert mailer.to() == sorted([email for _, email in BILLING] + [MEMBER[1]])
    assert sum(r["sent"] for r in results) == 3
    assert sum(r["already"] for r in results) == 19 * 3


def test_ses_throttled_then_accepting_retries_and_sends_once(account, mailer):
    mailer.failures = [EmailNotSent("TooManyRequestsException")]

    with pytest.raises(NotDelivered):
        notify(receipt_event())  # Lambda retries the event
    assert len(mailer.sent) == 1  # the other recipient's went out the first time
    assert notify(receipt_event()) == {"sent": 1, "already": 1}
    assert notify(receipt_event()) == {"sent": 0, "already": 2}

    assert mailer.to() == sorted(email for _, email in BILLING)
    assert mailer.attempts == 3


def test_a_sender_that_died_after_its_claim_is_replaced_once_its_lease_has_run_out(
    account, services, mailer, monkeypatch
):
    event = receipt_event()
    event_id = event["detail"]["event_id"]
    now = delivery.wall_clock()
    # A delivery claimed ann's email and died before SES: its lease is still running.
    assert services.store.claim_email(
        "acc_1",
        event_id,
        "usr_ann",
        token="dead",
        now=now,
        lease_until=now + 60,
        expires_at=now + 3600,
    )
    monkeypatch.setattr(delivery, "WAIT_SECONDS", 0.3)

    with pytest.raises(NotDelivered):
        notify(event)  # bob's is sent; ann's waits for a lease that will not end in time
    assert mailer.to() == ["bob@merchant.example"]

    monkeypatch.setattr(delivery, "wall_clock", lambda: now + 61)  # the lease ran out
    assert notify(event) == {"sent": 1, "already": 1}
    assert mailer.to() == sorted(email for _, email in BILLING)


def test_an_event_that_sends_no_email_and_an_account_without_users_send_nothing(
    account, services, mailer
):
    frozen = receipt_event() | {"detail-type": "IntegrationFrozen"}
    add_account(services.store, "acc_2")
    alone = receipt_event()
    alone["detail"] = {**alone["detail"], "account_id": "acc_2", "event_id": "ch_2:succeeded:0"}

    assert notify(frozen) == {"sent": 0, "already": 0}
    assert notify(alone) == {"sent": 0, "already": 0}
    assert mailer.sent == []


def test_the_notifier_logs_no_address_but_its_domain_and_no_card(account, mailer):
    logged: list[str] = []
    collector = Collector(logged)
    collector.setFormatter(logger.registered_formatter)
    logging.getLogger(logger.name).addHandler(collector)
    try:
        mailer.failures = [EmailNotSent("MessageRejected")]
        with pytest.raises(NotDelivered):
            notify(receipt_event())
        notify(receipt_event())
    finally:
        logging.getLogger(logger.name).removeHandler(collector)

    assert any('"domain":"merchant.example"' in line for line in logged)
    assert findings(logged) == []


def test_a_permanent_failure_is_retried_twice_then_ends_in_the_dlq(account, mailer):
    mailer.failures = [EmailNotSent("MessageRejected")] * 10
    (target,) = [t for t in rule_targets() if t.function.logical_id == "NotifierFunction"]
    event = reminder_event()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        events = boto3.client("events", region_name="us-east-1")
        events.create_event_bus(Name="integrations-test")
        dead_letters = sqs.create_queue(QueueName="NotifierDLQ")["QueueUrl"]
        source = RuleSource(
            events,
            sqs,
            "integrations-test",
            target,
            dead_letters,
            invoke=lambda _function, payload: app.lambda_handler(
                payload, LambdaContext("notifier")
            ),
        )
        frozen = {**event, "detail-type": "IntegrationFrozen"}
        events.put_events(
            Entries=[
                {
                    "Source": published["source"],
                    "DetailType": published["detail-type"],
                    "Detail": json.dumps(published["detail"]),
                    "EventBusName": "integrations-test",
                }
                for published in (event, frozen)
            ]
        )

        assert source.drain() == 1  # the rule matched the reminder only
        (message,) = sqs.receive_message(QueueUrl=dead_letters, MaxNumberOfMessages=10)["Messages"]
    record = json.loads(message["Body"])

    assert source.invocations == 1 + target.retries == 3
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestPayload"]["detail"] == event["detail"]
    assert record["responsePayload"]["errorType"] == "NotDelivered"
    assert mailer.sent == []
    assert mailer.attempts == 3 * 3  # three recipients, three invocations
