"""The runbook's renewal DLQ redrive (ops/redrive.py) on moto's SQS, with the queues as
template.yaml declares them: a renewal that failed 5 times comes back to the renewal queue.

moto serves no `StartMessageMoveTask` (the AWS-native redrive), so the project's move is what
runs here and what the runbook gives for anywhere that API is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.sources import create_queues
from local.template import resources
from ops.redrive import move_messages


@pytest.fixture
def queues() -> Iterator[tuple[Any, dict[str, str]]]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        created = create_queues(sqs, ["RenewalQueue"])
        yield sqs, {name: url for name, (url, _) in created.items()}


def dead_letter(sqs: Any, urls: dict[str, str], body: dict[str, str]) -> None:
    """Send a renewal and fail it as often as the queue's RedrivePolicy allows."""
    redrive = resources("AWS::SQS::Queue")["RenewalQueue"]["Properties"]["RedrivePolicy"]
    sqs.send_message(
        QueueUrl=urls["RenewalQueue"],
        MessageBody=json.dumps(body),
        MessageAttributes={"origin": {"DataType": "String", "StringValue": "sweep"}},
    )
    for _ in range(int(redrive["maxReceiveCount"]) + 1):
        sqs.receive_message(QueueUrl=urls["RenewalQueue"], VisibilityTimeout=0)


def visible(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
    ).get("Messages", [])
    return messages


def test_a_dead_lettered_renewal_goes_back_to_the_renewal_queue_with_its_attributes(queues):
    sqs, urls = queues
    renewal = {"account_id": "acc_1", "integration_id": "int_1", "due_at": "2026-12-21T10:00:00Z"}
    dead_letter(sqs, urls, renewal)
    assert [json.loads(m["Body"]) for m in visible(sqs, urls["RenewalDLQ"])] == [renewal]
    assert visible(sqs, urls["RenewalQueue"]) == []

    moved = move_messages(sqs, urls["RenewalDLQ"], urls["RenewalQueue"])

    assert moved == 1
    (back,) = visible(sqs, urls["RenewalQueue"])
    assert json.loads(back["Body"]) == renewal
    assert back["MessageAttributes"]["origin"]["StringValue"] == "sweep"
    assert visible(sqs, urls["RenewalDLQ"]) == []


def test_a_limit_moves_that_many_and_leaves_the_rest(queues):
    sqs, urls = queues
    for n in range(13):
        sqs.send_message(QueueUrl=urls["RenewalDLQ"], MessageBody=json.dumps({"n": n}))

    assert move_messages(sqs, urls["RenewalDLQ"], urls["RenewalQueue"], limit=12) == 12
    assert move_messages(sqs, urls["RenewalDLQ"], urls["RenewalQueue"]) == 1
    assert move_messages(sqs, urls["RenewalDLQ"], urls["RenewalQueue"]) == 0


class RecordingLambda:
    """Lambda's Invoke, recorded."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **arguments: Any) -> dict[str, Any]:
        self.calls.append(arguments)
        return {"StatusCode": 202}


def test_the_notifier_dlq_redrive_hands_each_event_back_to_the_notifier_asynchronously():
    from ops.redrive import reinvoke  # noqa: PLC0415

    event = {"detail-type": "ChargeSucceeded", "detail": {"event_id": "ch_1:succeeded:0"}}

    def filled(sqs: Any, name: str) -> str:
        url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
        # Lambda's OnFailure record, an event EventBridge could not deliver, something else.
        for body in (
            json.dumps({"requestContext": {}, "requestPayload": event}),
            json.dumps(event),
            "not json",
        ):
            sqs.send_message(QueueUrl=url, MessageBody=body)
        return url

    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        lambdas = RecordingLambda()
        dry = reinvoke(sqs, lambdas, filled(sqs, "DryRun"), "stack-notifier:live", dry_run=True)
        assert dry == (2, 1) and lambdas.calls == []

        url = filled(sqs, "NotifierDLQ")
        invoked, unreadable = reinvoke(sqs, lambdas, url, "stack-notifier:live")
        left = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]

    assert (invoked, unreadable) == (2, 1)
    assert [json.loads(c["Payload"]) for c in lambdas.calls] == [event, event]
    assert {(c["FunctionName"], c["InvocationType"]) for c in lambdas.calls} == {
        ("stack-notifier:live", "Event")
    }
    # Only the unreadable message is left (for a person to look at).
    assert (
        int(left["ApproximateNumberOfMessages"])
        + int(left["ApproximateNumberOfMessagesNotVisible"])
        == 1
    )
