"""The scheduled functions through their real handlers: EventBridge Scheduler event in, SQS
(moto: no real local stand-in) between the sweep and the workers, DynamoDB Local underneath."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import boto3
import pytest
from moto import mock_aws

from functions.deletion_sweep.app import lambda_handler as deletion_sweep
from functions.renewal_sweep import app as renewal_sweep
from functions.renewal_worker.app import lambda_handler as renewal_worker
from lifecycle.rules.calendar import utc
from lifecycle.rules.integration import Action, Command, decide
from lifecycle.rules.model import AccountStatus, CancelReason, Status, user
from lifecycle.settings import settings
from lifecycle.usecases.services import use_services
from local.events import LambdaContext, sqs_record

pytestmark = pytest.mark.integration

END = utc(2026, 12, 21, 10)


def scheduled_event(at, *, with_version: bool = True) -> dict:
    event = {
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": "123456789012",
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/renewal-sweep"],
        "detail": {"attempt": "1"},
    }
    if with_version:
        event["version"] = "0"
    return event


@pytest.fixture
def queue(world, monkeypatch):
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="renewals")["QueueUrl"]
        monkeypatch.setenv("RENEWAL_QUEUE_URL", url)
        settings.cache_clear()
        renewal_sweep._sqs.cache_clear()
        use_services(world.services)
        yield sqs, url
        use_services(None)
        settings.cache_clear()
        renewal_sweep._sqs.cache_clear()


def drain(sqs, url) -> list[dict]:
    records = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return records
        for message in batch:
            records.append(
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": {},
                    "messageAttributes": {},
                    "md5OfBody": message["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:renewals",
                    "awsRegion": "us-east-1",
                }
            )
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.mark.parametrize("with_version", [True, False])
def test_the_sweep_enqueues_what_is_due_and_the_workers_renew_it(world, queue, with_version):
    sqs, url = queue
    for n in range(12):
        world.add(f"int_{n:02d}")
    world.clock.set(END - timedelta(minutes=15))
    assert renewal_sweep.lambda_handler(
        scheduled_event(world.clock.now(), with_version=with_version),
        LambdaContext("renewal-sweep"),
    ) == {"enqueued": 0}
    world.clock.set(END)
    assert renewal_sweep.lambda_handler(scheduled_event(END), LambdaContext("renewal-sweep")) == {
        "enqueued": 12
    }
    records = drain(sqs, url)
    assert sorted(json.loads(r["body"])["integration_id"] for r in records) == [
        f"int_{n:02d}" for n in range(12)
    ]
    for start in range(0, len(records), 10):
        response = renewal_worker(
            {"Records": records[start : start + 10]}, LambdaContext("renewal-worker")
        )
        assert response == {"batchItemFailures": []}
    assert all(
        world.store.get_integration("acc_1", f"int_{n:02d}").current_period_start == END
        for n in range(12)
    )
    # A redelivered batch (SQS is at-least-once) changes nothing and charges nothing.
    response = renewal_worker({"Records": records[:10]}, LambdaContext("renewal-worker"))
    assert response == {"batchItemFailures": []}
    assert world.payment_intents() == 24


def test_a_malformed_message_fails_alone(world, queue):
    world.add("int_ok")
    world.clock.set(END)
    good = sqs_record(
        "m1",
        "r1",
        json.dumps({"account_id": "acc_1", "integration_id": "int_ok"}),
        "arn:aws:sqs:us-east-1:123456789012:renewals",
    )
    bad = {**good, "messageId": "m2", "body": "{not json"}
    response = renewal_worker({"Records": [good, bad]}, LambdaContext("renewal-worker"))
    assert response == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert world.store.get_integration("acc_1", "int_ok").current_period_start == END


def test_the_deletion_sweep_deletes_what_was_cancelled_once_its_period_ended(world, queue):
    subject = world.add("int_gone")
    decision = decide(
        subject,
        Command(Action.CANCEL, user("u"), reason=CancelReason.NO_LONGER_NEEDED),
        world.clock.now(),
        account_status=AccountStatus.ACTIVE,
        catalog=world.services.catalog,
    )
    world.store.commit(decision)
    world.add("int_kept")
    world.clock.set(END - timedelta(hours=1))
    assert (
        deletion_sweep(scheduled_event(world.clock.now()), LambdaContext("deletion-sweep"))[
            "deleted"
        ]
        == 0
    )
    world.clock.set(END)
    assert deletion_sweep(scheduled_event(END), LambdaContext("deletion-sweep"))["deleted"] == 1
    assert world.store.get_integration("acc_1", "int_gone") is None
    assert world.store.get_integration("acc_1", "int_kept").status is Status.ACTIVE
    assert deletion_sweep(scheduled_event(END), LambdaContext("deletion-sweep"))["deleted"] == 0
