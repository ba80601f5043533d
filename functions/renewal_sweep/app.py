"""Renewal sweep (every 15 minutes): enqueue every integration due for renewal or a payment
retry, and every ledger line holding money not yet applied or refunded (the reconciler: the
worker applies or refunds it), read from the sparse due index (work grows with what is due,
never with the table); then send the deletion reminders that are due (one transaction each).

Each due integration it sends is leased first (its index position moved past the time the
workers need to reach it), so overlapping or later runs do not send it again while it is in
flight. It stops with time to spare (a tenth of its time, at least MIN_RESERVE_MS, before
Lambda's timeout, after the batch it is sending): what it did not reach is still due, and the
next run continues (the reminders too: a run that stopped early leaves them to the next)."""

from __future__ import annotations

import functools
import json
from typing import Any

from lifecycle.observability import logger, metrics
from lifecycle.schedule import ScheduledEvent
from lifecycle.settings import settings
from lifecycle.usecases import reminders, renewals
from lifecycle.usecases.services import services

# Left of the time when the sweep stops (30 s of the 300 s timeout): a batch (ten leases side
# by side, one SendMessageBatch) takes tens of milliseconds; the rest is margin for a slow call.
RESERVE_SHARE = 0.1
MIN_RESERVE_MS = 5_000


@functools.cache
def _sqs() -> Any:
    import boto3  # noqa: PLC0415 - built on first use, never at import

    return boto3.client("sqs")


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    scheduled = ScheduledEvent.parse(event)
    config = settings()
    queue_url = config.renewal_queue_url
    if not queue_url:
        raise RuntimeError("RENEWAL_QUEUE_URL is not set")
    enqueued = 0
    stopped = False
    reserve = max(MIN_RESERVE_MS, RESERVE_SHARE * context.get_remaining_time_in_millis())

    def out_of_time() -> bool:
        nonlocal stopped
        stopped = bool(context.get_remaining_time_in_millis() < reserve)
        return stopped

    lease = renewals.Lease(per_second=config.stripe_rate_per_second)
    for batch in renewals.sweep_batches(services(), stop=out_of_time, lease=lease):
        enqueued += _send(queue_url, batch)
    metrics.add_metric(name="RenewalsEnqueued", unit="Count", value=enqueued)
    reminded = 0
    if stopped:
        metrics.add_metric(name="RenewalSweepStoppedEarly", unit="Count", value=1)
    else:
        # Deletion reminders: one DynamoDB transaction each, sent here (no Stripe, no queue).
        reminded = sum(1 for r in reminders.send_due(services()) if r.result == "sent")
    metrics.add_metric(name="DeletionRemindersSent", unit="Count", value=reminded)
    logger.info(
        "renewal sweep",
        extra={
            "enqueued": enqueued,
            "stopped_early": stopped,
            "reminded": reminded,
            "scheduled_time": scheduled.time.isoformat(),
        },
    )
    return {"enqueued": enqueued, **({"stopped_early": 1} if stopped else {})}


def _send(queue_url: str, batch: list[renewals.Message]) -> int:
    entries = [{"Id": str(n), "MessageBody": json.dumps(m.body)} for n, m in enumerate(batch)]
    response = _sqs().send_message_batch(QueueUrl=queue_url, Entries=entries)
    failed = response.get("Failed") or []
    if failed:
        # Their leases go back, so that the next run (or the schedule's retry of this one)
        # sends them; the messages that did go are not sent again.
        refused = [batch[int(f["Id"])] for f in failed]
        renewals.release(services(), refused)
        raise RuntimeError(f"{len(failed)} renewal messages were not enqueued")
    return len(entries)
