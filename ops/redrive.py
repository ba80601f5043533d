"""The dead-letter redrives of the runbook (docs/operations.md#dead-letter-queues).

    python -m ops.redrive renewals --stack integrations-prod
        RenewalDLQ back to RenewalQueue (what `aws sqs start-message-move-task` does; this works
        where that API is not served, as on moto's SQS locally)
    python -m ops.redrive outbox --stack integrations-prod [--older-than-minutes 10] [--dry-run]
        republish every outbox row not marked published (the EventsDLQ holds stream pointers,
        gone from the stream after 24 hours; the rows are kept 7 days)
    python -m ops.redrive notifications --stack integrations-prod [--dry-run]
        invoke the notifier again with every event of NotifierDLQ (emails already sent are not
        sent again: each has a marker)

`--stack` reads the queues, the table and the bus from the stack's outputs; `--from-url`,
`--to-url`, `--table` and `--bus` name them directly. AWS credentials and region come from the
usual places (AWS_PROFILE, AWS_REGION).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from lifecycle.clock import Clock, SystemClock
from lifecycle.store.repository import Store
from lifecycle.usecases import publishing

SQS_BATCH = 10  # ReceiveMessage, SendMessageBatch and DeleteMessageBatch take at most 10
# Long enough to send a received batch on before it shows again in the dead-letter queue.
RECEIVE_VISIBILITY_SECONDS = 60
# The stream batch size of the publisher (template.yaml): the same PutEvents grouping.
REPUBLISH_BATCH = 100
# Rows younger than this are left to the publisher, which may be reading them from the stream
# right now (sending them here too would only make a duplicate).
DEFAULT_OLDER_THAN = timedelta(minutes=10)


# ---------------------------------------------------------------- a dead-letter queue back


def move_messages(sqs: Any, source_url: str, target_url: str, limit: int | None = None) -> int:
    """Every message of `source_url` sent to `target_url` (body and attributes) and then deleted
    from the source; the number moved. A message leaves the source only once it was sent, so an
    interrupted move duplicates at worst: a renewal message twice is harmless (the worker reads
    the integration again, and the ledger allows one charge per period)."""
    moved = 0
    while limit is None or moved < limit:
        wanted = SQS_BATCH if limit is None else min(SQS_BATCH, limit - moved)
        messages = sqs.receive_message(
            QueueUrl=source_url,
            MaxNumberOfMessages=wanted,
            MessageAttributeNames=["All"],
            VisibilityTimeout=RECEIVE_VISIBILITY_SECONDS,
            WaitTimeSeconds=1,
        ).get("Messages", [])
        if not messages:
            return moved
        entries = [
            {"Id": str(n), "MessageBody": message["Body"]}
            | (
                {"MessageAttributes": message["MessageAttributes"]}
                if message.get("MessageAttributes")
                else {}
            )
            for n, message in enumerate(messages)
        ]
        failed = sqs.send_message_batch(QueueUrl=target_url, Entries=entries).get("Failed") or []
        if failed:
            # Nothing deleted: the batch shows again in the source after its visibility timeout.
            raise RuntimeError(f"{len(failed)} messages were not sent: {failed[0]}")
        sqs.delete_message_batch(
            QueueUrl=source_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": message["ReceiptHandle"]}
                for n, message in enumerate(messages)
            ],
        )
        moved += len(messages)
    return moved


# ---------------------------------------------------------------- the outbox, republished


def as_stream_records(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rows as the publisher reads them from the stream (INSERT, NEW_IMAGE)."""
    return [
        {"eventName": "INSERT", "dynamodb": {"NewImage": row, "SequenceNumber": str(position)}}
        for position, row in enumerate(rows)
    ]


@dataclass(slots=True)
class Republished:
    found: int = 0
    published: int = 0
    already_published: int = 0
    left: int = 0  # not sent: run it again (the publisher's own stop-at-first-failure rule)


def republish_outbox(
    client: Any,
    table: str,
    bus: str,
    events: Any,
    clock: Clock,
    older_than: timedelta = DEFAULT_OLDER_THAN,
    dry_run: bool = False,
) -> Republished:
    """Send every unpublished outbox row older than `older_than` to `bus`, through the event
    publisher's own code: checked, sent in order, marked published, so a row is never sent
    twice by this and a second run finds nothing left."""
    store = Store(table, client=client)
    rows = store.unpublished_outbox(clock.now() - older_than)
    result = Republished(found=len(rows))
    if dry_run:
        result.left = len(rows)
        return result
    for start in range(0, len(rows), REPUBLISH_BATCH):
        batch = as_stream_records(rows[start : start + REPUBLISH_BATCH])
        outcome = publishing.publish_outbox(batch, store, events, clock, bus_name=bus)
        result.published += outcome.published
        result.already_published += outcome.already_published
        if outcome.failed:
            result.left = len(rows) - start - (len(batch) - len(outcome.failed))
            return result
    return result


# ---------------------------------------------------------------- the command


def dead_lettered_event(body: str) -> dict[str, Any] | None:
    """The EventBridge event a NotifierDLQ message holds: Lambda's asynchronous invocation
    record (`requestPayload`), or the event itself (a delivery EventBridge could not make)."""
    import json  # noqa: PLC0415

    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    event = message.get("requestPayload", message)
    return event if isinstance(event, dict) and "detail-type" in event else None


def reinvoke(
    sqs: Any, lambda_client: Any, queue_url: str, function: str, *, dry_run: bool = False
) -> tuple[int, int]:
    """Every event of the notifier's DLQ handed to the function again (asynchronously, as
    EventBridge does), each message deleted once Lambda took it; (invoked, unreadable)."""
    import json  # noqa: PLC0415

    invoked = unreadable = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=SQS_BATCH,
            VisibilityTimeout=RECEIVE_VISIBILITY_SECONDS,
            WaitTimeSeconds=1,
        ).get("Messages", [])
        if not messages:
            return invoked, unreadable
        for message in messages:
            event = dead_lettered_event(message["Body"])
            if event is None:
                unreadable += 1
                continue
            invoked += 1
            if dry_run:
                continue
            lambda_client.invoke(
                FunctionName=function, InvocationType="Event", Payload=json.dumps(event).encode()
            )
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if dry_run:
            return invoked, unreadable


def stack_outputs(stack: str) -> dict[str, str]:
    import boto3  # noqa: PLC0415 - only the command needs it

    (described,) = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}


def _named(
    arguments: argparse.Namespace, outputs: Mapping[str, str], names: dict[str, str]
) -> Iterator[str]:
    for attribute, output in names.items():
        value = getattr(arguments, attribute) or outputs.get(output)
        if not value:
            raise SystemExit(
                f"--{attribute.replace('_', '-')} or --stack (output {output}) is needed"
            )
        yield value


def main(argv: list[str] | None = None) -> int:
    import boto3  # noqa: PLC0415

    parser = argparse.ArgumentParser(description="Dead-letter redrives (docs/operations.md).")
    commands = parser.add_subparsers(dest="command", required=True)
    renewals = commands.add_parser("renewals", help="RenewalDLQ back to RenewalQueue")
    renewals.add_argument("--stack")
    renewals.add_argument("--from-url")
    renewals.add_argument("--to-url")
    renewals.add_argument("--limit", type=int)
    outbox = commands.add_parser("outbox", help="republish the outbox rows not yet published")
    outbox.add_argument("--stack")
    outbox.add_argument("--table")
    outbox.add_argument("--bus")
    outbox.add_argument(
        "--older-than-minutes", type=float, default=DEFAULT_OLDER_THAN.total_seconds() / 60
    )
    outbox.add_argument("--dry-run", action="store_true")
    notifications = commands.add_parser(
        "notifications", help="invoke the notifier with every event of NotifierDLQ"
    )
    notifications.add_argument("--stack")
    notifications.add_argument("--queue-url")
    notifications.add_argument("--function", help="default: <stack>-notifier:live")
    notifications.add_argument("--dry-run", action="store_true")
    arguments = parser.parse_args(argv)
    outputs = stack_outputs(arguments.stack) if arguments.stack else {}

    if arguments.command == "renewals":
        source, target = _named(
            arguments, outputs, {"from_url": "RenewalDLQUrl", "to_url": "RenewalQueueUrl"}
        )
        moved = move_messages(boto3.client("sqs"), source, target, arguments.limit)
        print(f"moved {moved} message(s) from {source} to {target}")
        return 0

    if arguments.command == "notifications":
        (queue,) = _named(arguments, outputs, {"queue_url": "NotifierDLQUrl"})
        function = arguments.function or f"{arguments.stack}-notifier:live"
        invoked, unreadable = reinvoke(
            boto3.client("sqs"), boto3.client("lambda"), queue, function, dry_run=arguments.dry_run
        )
        print(
            f"events handed to {function}: {invoked}; unreadable messages left: {unreadable}"
            + (" (dry run)" if arguments.dry_run else "")
        )
        return 1 if unreadable else 0

    table, bus = _named(arguments, outputs, {"table": "TableName", "bus": "EventBusName"})
    result = republish_outbox(
        boto3.client("dynamodb"),
        table,
        bus,
        boto3.client("events"),
        SystemClock(),
        timedelta(minutes=arguments.older_than_minutes),
        dry_run=arguments.dry_run,
    )
    print(
        f"unpublished rows found: {result.found}; published now: {result.published}; "
        f"already published: {result.already_published}; left: {result.left}"
        + (" (dry run)" if arguments.dry_run else "")
    )
    return 1 if result.left and not arguments.dry_run else 0


if __name__ == "__main__":
    sys.exit(main())
