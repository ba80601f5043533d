"""Which domain event becomes which email, for whom, and what it says (notifications.md).

An email is rendered from the event's detail alone (plus the dashboard's address): the notifier
reads nothing else, so an email says what was true when the event was written."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote


@dataclass(frozen=True, slots=True)
class Kind:
    """An email: its templates (`<template>.txt`, `<template>.html`), its subject (a template
    of the same context) and who gets it (billing users only, or every user)."""

    template: str
    subject: str
    billing_only: bool


KINDS: Mapping[str, Kind] = {
    "ChargeSucceeded": Kind(
        "receipt", "Receipt {{ receipt_number }}: {{ amount | money(currency) }} paid", True
    ),
    "PaymentFailed": Kind(
        "payment_failed", "Payment failed: {{ amount | money(currency) }} for {{ name }}", True
    ),
    "IntegrationSuspended": Kind("suspended", "{{ name }} is suspended", True),
    "DeletionReminder": Kind(
        "deletion_reminder", "{{ name }} will be deleted on {{ deletes_at | day }}", False
    ),
    "IntegrationDeleted": Kind("deleted", "{{ name }} was deleted", False),
    "AccountDisabled": Kind("account_disabled", "Your account is disabled", True),
    "AccountReactivated": Kind("account_reactivated", "Your account is active again", True),
    "ChargeRefunded": Kind("refunded", "Refund: {{ amount | money(currency) }}", True),
}
DETAIL_TYPES = tuple(KINDS)

REFUND_REASONS = {
    "not_applied": (
        "what it paid for could no longer be applied (something else changed it first), so the"
        " payment was refunded in full"
    ),
    "refunded_at_stripe": "the payment was refunded by our billing team",
}
SUSPENSION_REASONS = {
    "non_payment": "the renewal stayed unpaid for 7 days after the renewal date",
    "account_cancelled": "the account's subscription was cancelled",
}


def link(dashboard_url: str, fragment: str) -> str:
    """A link into the dashboard: its address and a route of its own (`#account`)."""
    return f"{dashboard_url.split('#', 1)[0]}#{fragment}"


def context(detail: Mapping[str, Any], dashboard_url: str) -> dict[str, Any]:
    """What the templates see: the event's detail (values as they are: the templates escape
    them), the links, and the explanations the codes stand for."""
    found: dict[str, Any] = {
        # What an event may leave out (the templates are strict about the rest).
        "name": "your integration",
        "currency": "usd",
        "amount": 0,
        "items": [],
        "receipt_number": "",
        "suspended": False,
        "next_attempt_at": "",
        "suspends_at": "",
        "deletes_at": "",
        **{k: v for k, v in detail.items() if v is not None},
    }
    charge = str(detail.get("charge_id") or "")
    found["links"] = {
        "dashboard": link(dashboard_url, "integrations"),
        "account": link(dashboard_url, "account"),
        "payment_method": link(dashboard_url, "account"),
        "integrations": link(dashboard_url, "integrations"),
        "receipt": link(dashboard_url, f"receipt/{quote(charge, safe='_')}") if charge else None,
    }
    found["refund_reason"] = REFUND_REASONS.get(str(detail.get("reason")), "it was refunded")
    found["suspension_reason"] = SUSPENSION_REASONS.get(
        str(detail.get("reason")), "the integration has no paid period"
    )
    return found
