"""Renewal worker: renews one integration per SQS message (charge, freeze taking effect,
dunning, suspension), reporting failed messages only (partial batch response)."""

from __future__ import annotations

import functools
import json
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from lifecycle.observability import logger, metrics
from lifecycle.settings import settings
from lifecycle.usecases import renewals
from lifecycle.usecases.services import services

processor = BatchProcessor(event_type=EventType.SQS)


@functools.cache
def _limiter() -> renewals.RateLimiter:
    config = settings()
    return renewals.RateLimiter(
        config.stripe_rate_per_second / max(1, config.renewal_worker_concurrency)
    )


def renew(record: SQSRecord) -> str:
    message = json.loads(record.body)
    if "charge_id" in message:
        result = renewals.reconcile(
            services(), message["account_id"], message["charge_id"], message.get("ledger_key")
        )
        metrics.add_metric(name=f"Reconciled_{result}", unit="Count", value=1)
        return result
    outcome = renewals.renew(
        services(), message["account_id"], message["integration_id"], _limiter()
    )
    metrics.add_metric(name=f"Renewal_{outcome.result}", unit="Count", value=1)
    return outcome.result


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # A failed record (payment outcome unknown, a concurrent change) is retried by SQS after
    # its visibility timeout, then goes to the DLQ; the ledger prevents a second charge.
    response = process_partial_response(
        event=event, record_handler=renew, processor=processor, context=context
    )
    return dict(response)
