"""Stripe's webhooks, checked before anything of them is read: the signature over the exact
bytes received, with one of our signing secrets (two during a rotation), within a tolerance of
the wall clock; then that the signed body is an event that can be recorded once.

`stripe` is imported inside `verify_webhook`: importing it costs more than 100 ms.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from lifecycle.settings import secret_list

WEBHOOK_TOLERANCE_SECONDS = 300
WEBHOOK_EVENT_ID_MAX_LENGTH = 255


class WebhookRejected(Exception):
    """A webhook delivery answered 400: nothing of it is processed or recorded."""


class WebhookSignatureInvalid(WebhookRejected):
    """The body is not signed with one of our webhook secrets, recently."""


class WebhookEventInvalid(WebhookRejected):
    """A signed body that is not an event we can process once: not a JSON object, no `type`,
    or an `id` that is not a string of 1 to WEBHOOK_EVENT_ID_MAX_LENGTH characters (api.md;
    the id becomes a DynamoDB key, whose limit is 2 KB)."""


def webhook_secrets() -> list[str]:
    """The webhook signing secrets (two during a rotation), comma-separated: env
    `STRIPE_WEBHOOK_SECRETS` (local), else the SSM parameter named by
    `STRIPE_WEBHOOK_SECRETS_PARAM`."""
    return secret_list("STRIPE_WEBHOOK_SECRETS")


def verify_webhook(
    payload: bytes,
    signature_header: str | None,
    secrets: Sequence[str],
    tolerance: int = WEBHOOK_TOLERANCE_SECONDS,
) -> dict[str, Any]:
    """The event in `payload` once its `Stripe-Signature` matches one of `secrets` within
    `tolerance` seconds of the wall clock; otherwise `WebhookSignatureInvalid`, and
    `WebhookEventInvalid` when the signed body is not an event that can be recorded.

    The signature covers the exact bytes received, so they are checked before any parsing."""
    import stripe  # noqa: PLC0415 - lazy on purpose (module docstring)

    if not secrets:
        raise RuntimeError("no webhook secret configured")
    if not signature_header:
        raise WebhookSignatureInvalid("no Stripe-Signature header")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise WebhookSignatureInvalid("the body is not UTF-8") from error
    reason = "no secret matched"
    for secret in secrets:
        try:
            # What `stripe.Webhook.construct_event` checks, without building an SDK object.
            stripe.WebhookSignature.verify_header(text, signature_header, secret, tolerance)
            break
        except stripe.SignatureVerificationError as error:
            reason = error.user_message or reason
    else:
        raise WebhookSignatureInvalid(reason)
    try:
        event = json.loads(text)
    except (ValueError, RecursionError) as error:
        # RecursionError: thousands of nested brackets (signed by us, but still not an event).
        raise WebhookEventInvalid("the signed body is not JSON") from error
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise WebhookEventInvalid("the signed body is not a Stripe event")
    event_id = event.get("id")
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= WEBHOOK_EVENT_ID_MAX_LENGTH:
        raise WebhookEventInvalid(
            f"the event id is not a string of 1 to {WEBHOOK_EVENT_ID_MAX_LENGTH} characters"
        )
    return event
