"""The notifier's use case: one domain event to one email per recipient, each sent at most once.

Per (event id, recipient) a marker is claimed with a conditional write *before* SES is called,
with a lease: two deliveries of the same event at once never both send (the second waits for
the first's outcome), and a sender that died between its claim and SES leaves a claim that
expires, so a retry sends it. After SES accepted the email the marker says `sent` for good;
when SES refused it the claim is removed and the error raised, so the event is retried.

The one window left: SES accepted the email and the `sent` mark was then lost (the function
died in between); the claim expires and a retry sends that email a second time. SES has no
idempotency key to close it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lifecycle.notifications.mailer import EmailNotSent, Mailer
from lifecycle.notifications.messages import KINDS, context
from lifecycle.notifications.recipients import Recipient, domain_of, recipients
from lifecycle.notifications.render import Email, render
from lifecycle.observability import logger
from lifecycle.store.repository import EMAIL_RETENTION
from lifecycle.usecases.services import Services

# Longer than one SES call at its worst (3 tries of 2 s connect and 5 s read, and backoff).
LEASE_SECONDS = 60
# How long a delivery waits for another one sending the same email before it gives up (and
# is retried later).
WAIT_SECONDS = 20.0
POLL_SECONDS = 0.05


class EmailInFlight(Exception):
    """Another delivery of the same event is sending this email and has not finished."""


class NotDelivered(Exception):
    """Some emails of the event were not sent: the event is to be retried (those sent are
    not sent again)."""


def wall_clock() -> int:
    return int(time.time())


@dataclass(slots=True)
class Delivery:
    detail_type: str
    event_id: str
    sent: int = 0
    already: int = 0
    failed: list[str] = field(default_factory=list)


def deliver(
    services: Services,
    mailer: Mailer,
    event: Mapping[str, Any],
    *,
    sender: str,
    dashboard_url: str,
) -> Delivery | None:
    """Send the emails of one EventBridge event; None when its detail-type sends none. Raises
    NotDelivered when any recipient's email could not be sent (after trying every one)."""
    detail_type = str(event.get("detail-type", ""))
    kind = KINDS.get(detail_type)
    detail = event.get("detail") or {}
    if kind is None or not isinstance(detail, Mapping):
        return None
    event_id, account_id = str(detail["event_id"]), str(detail["account_id"])
    outcome = Delivery(detail_type, event_id)
    to = recipients(services, account_id, kind.billing_only)
    if not to:
        logger.info("no recipients", extra={"event_id": event_id, "detail_type": detail_type})
        return outcome
    email = render(detail_type, context(detail, dashboard_url))
    for recipient in to:
        try:
            if _send_once(services, mailer, sender, account_id, event_id, recipient, email):
                outcome.sent += 1
            else:
                outcome.already += 1
        except (EmailNotSent, EmailInFlight) as error:
            logger.warning(
                "email not sent",
                extra={
                    "event_id": event_id,
                    "user_id": recipient.user_id,
                    "domain": domain_of(recipient.email),
                    "why": getattr(error, "code", type(error).__name__),
                },
            )
            outcome.failed.append(recipient.user_id)
    if outcome.failed:
        raise NotDelivered(
            f"{len(outcome.failed)} of {len(to)} emails of {event_id} not sent; retry"
        )
    return outcome


def _send_once(
    services: Services,
    mailer: Mailer,
    sender: str,
    account_id: str,
    event_id: str,
    recipient: Recipient,
    email: Email,
) -> bool:
    """Send one email unless it was sent already; True when this call sent it."""
    store = services.store
    token = uuid.uuid4().hex
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        now = wall_clock()
        claimed = store.claim_email(
            account_id,
            event_id,
            recipient.user_id,
            token=token,
            now=now,
            lease_until=now + LEASE_SECONDS,
            expires_at=now + int(EMAIL_RETENTION.total_seconds()),
        )
        if claimed:
            break
        claim = store.email_claim(account_id, event_id, recipient.user_id)
        if claim is not None and claim.state == "sent":
            return False
        if time.monotonic() > deadline:
            raise EmailInFlight(event_id)
        time.sleep(POLL_SECONDS)  # another delivery is sending it: wait for its outcome
    try:
        message_id = mailer.send(
            sender=sender, to=recipient.email, email=email, event_id=event_id, tag=email.tag
        )
    except BaseException:
        store.release_email(account_id, event_id, recipient.user_id, token=token)
        raise
    if not store.mark_email_sent(
        account_id,
        event_id,
        recipient.user_id,
        token=token,
        message_id=message_id,
        at=services.clock.now(),
    ):
        logger.warning("sent after the claim was taken over", extra={"event_id": event_id})
    logger.info(
        "email sent",
        extra={
            "event_id": event_id,
            "user_id": recipient.user_id,
            "domain": domain_of(recipient.email),
            "template": email.tag,
        },
    )
    return True
