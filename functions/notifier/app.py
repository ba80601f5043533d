"""Notifier: one domain event from the bus (an EventBridge rule, invoked asynchronously) to one
email per recipient through SES, each (event, recipient) sent at most once. A failure raises:
Lambda retries the event, then it goes to the notifier's DLQ (alarmed)."""

from __future__ import annotations

import functools
from typing import Any

from lifecycle.notifications.delivery import deliver
from lifecycle.notifications.mailer import SesMailer
from lifecycle.observability import logger, metrics
from lifecycle.settings import settings
from lifecycle.usecases.services import services


@functools.cache
def _mailer() -> SesMailer:
    return SesMailer()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    config = settings()
    done = deliver(
        services(),
        _mailer(),
        event,
        sender=config.email_sender,
        dashboard_url=config.dashboard_url,
    )
    if done is None:
        return {"sent": 0, "already": 0}
    metrics.add_metric(name="EmailsSent", unit="Count", value=done.sent)
    logger.info(
        "event notified",
        extra={
            "event_id": done.event_id,
            "detail_type": done.detail_type,
            "sent": done.sent,
            "already": done.already,
        },
    )
    return {"sent": done.sent, "already": done.already}
