"""Renewal sweep (every 15 minutes): enqueue every integration due for renewal or a payment
retry, and every ledger line holding money not yet applied or refunded (the reconciler: the
worker applies or refunds it), read from the sparse due index (work grows with what is due,
never with the table); then send the deletion reminders that are due (one transaction each)."""

from __future__ import annotations

import functools
import json
from typing import Any

from lifecycle.observability import logger, metrics
from lifecycle.schedule import ScheduledEvent
from lifecycle.settings import settings
from lifecycle.usecases import reminders, renewals
from lifecycle.usecases.services import services

BATCH = 10  # SendMessageBatch's limit


@functools.cache
def _sqs() -> Any:
    import boto3  # noqa: PLC0415 - built on first use, never at import

    return boto3.client("sqs")


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    scheduled = ScheduledEvent.parse(event)
    queue_url = settings().renewal_queue_url
    if not queue_url:
        raise RuntimeError("RENEWAL_QUEUE_URL is not set")
    entries: list[dict[str, str]] = []
    enqueued = 0
    for body in renewals.sweep(services()):
        entries.append({"Id": str(len(entries)), "MessageBody": json.dumps(body)})
        if len(entries) == BATCH:
            enqueued += _send(queue_url, entries)
            entries = []
    if entries:
        enqueued += _send(queue_url, entries)
    metrics.add_metric(name="RenewalsEnqueued", unit="Count", value=enqueued)
    # Deletion reminders: one DynamoDB transaction each, sent here (no Stripe, no queue).
    reminded = sum(1 for r in reminders.send_due(services()) if r.result == "sent")
    metrics.add_metric(name="DeletionRemindersSent", unit="Count", value=reminded)
    logger.info(
        "renewal sweep",
        extra={
            "enqueued": enqueued,
            "reminded": reminded,
            "scheduled_time": scheduled.time.isoformat(),
        },
    )
    return {"enqueued": enqueued}


def _send(queue_url: str, entries: list[dict[str, str]]) -> int:
    response = _sqs().send_message_batch(QueueUrl=queue_url, Entries=entries)
    failed = response.get("Failed") or []
    if failed:
        # The schedule retries the whole sweep; messages already sent are harmless duplicates.
        raise RuntimeError(f"{len(failed)} renewal messages were not enqueued")
    return len(entries)
