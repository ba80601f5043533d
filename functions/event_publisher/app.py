"""Event publisher: new outbox rows from the table stream to the domain event bus.

Its own partial batch response rather than Powertools' `BatchProcessor`: the processor hands
records one by one to a handler and carries on past a failure, which fits neither need here.
PutEvents takes 10 entries a call (one call per record would be ten times the calls), and
after a failed record the later ones must not be sent at all, or an account's events reach
the bus out of order and are sent again when Lambda retries from the failed record.
`lifecycle.usecases.publishing` returns
`{"batchItemFailures": [{"itemIdentifier": <SequenceNumber>}]}` itself: the failed record and
every one after it.
"""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lifecycle.observability import logger, metrics
from lifecycle.usecases import publishing
from lifecycle.usecases.services import services


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    used = services()
    outcome = publishing.publish_outbox(
        records, used.store, publishing.default_client(), used.clock
    )
    metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=outcome.published)
    logger.info(
        "outbox batch published",
        extra={
            "records": len(records),
            "published": outcome.published,
            "already_published": outcome.already_published,
            "ignored": outcome.ignored,
            "put_events_calls": outcome.put_events_calls,
            "failed": len(outcome.failed),
        },
    )
    return outcome.response()
