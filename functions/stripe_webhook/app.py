"""Stripe webhook (Lambda function URL, auth NONE): the signature is verified on the raw body,
against any of the configured secrets (rotation), before anything is parsed; each event id is
processed once; unknown types are acknowledged and ignored. A signed body that is not an event
with an id of at most 255 characters is a 400, before anything is recorded."""

from __future__ import annotations

import base64
import json
from typing import Any

from lifecycle.observability import logger, metrics
from lifecycle.payments.stripe_webhooks import (
    WebhookEventInvalid,
    WebhookSignatureInvalid,
    verify_webhook,
    webhook_secrets,
)
from lifecycle.usecases import webhooks
from lifecycle.usecases.services import services

TOLERANCE_SECONDS = 300  # of wall-clock time, as Stripe's libraries check it


def _answer(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "POST")
    if method != "POST":
        return _answer(405, {"error": "POST only"})
    raw = event.get("body") or ""
    payload = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    try:
        stripe_event = verify_webhook(
            payload, headers.get("stripe-signature"), webhook_secrets(), TOLERANCE_SECONDS
        )
    except WebhookSignatureInvalid:
        # Nothing parsed, nothing changed; never log the payload or the header.
        metrics.add_metric(name="WebhookSignatureRejected", unit="Count", value=1)
        return _answer(400, {"error": "invalid signature"})
    except WebhookEventInvalid:
        # Signed, but no event id to record it under (api.md: 400, never a 5xx): Stripe never
        # sends one, so a sender's bug, answered before anything is read or written.
        metrics.add_metric(name="WebhookEventRejected", unit="Count", value=1)
        return _answer(400, {"error": "not a Stripe event"})
    result = webhooks.handle(services(), stripe_event)
    logger.info(
        "stripe event",
        extra={
            "event_id": stripe_event.get("id"),
            "type": stripe_event.get("type"),
            "result": result,
        },
    )
    metrics.add_metric(name="WebhookEvents", unit="Count", value=1)
    return _answer(200, {"received": True, "result": result})
