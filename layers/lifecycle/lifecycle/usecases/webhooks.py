"""Stripe's webhook events, checked against the ledger line they name, then settled; and the
payment-method events, checked against the account they name (`usecases.payment_method`).

Webhooks confirm, they never decide: an event moves a ledger line only when it matches it (the
same PaymentIntent once the line has one, the same amount, currency and Stripe customer, and
metadata naming a charge of that account). Anything else is acknowledged, changes nothing, and
is logged as an error and counted (`WebhookMismatch`).

Events arrive late, twice, concurrently and in any order. A line moves only forward along
`rules.ledger.RANK`, with conditional writes re-read on a lost race. A success is settled like
the request's own (`charging.settle`: applied to the state as it is now, or refunded). A refund
is recorded and never applies anything: a refunded line pays for nothing again (a period
already served stays served).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from lifecycle.observability import logger, metrics
from lifecycle.rules.errors import Conflict
from lifecycle.rules.ledger import RANK, ChargeRecord, ChargeStatus
from lifecycle.rules.model import STRIPE, HistoryEntry
from lifecycle.usecases import payment_method
from lifecycle.usecases.charging import record_refund, settle
from lifecycle.usecases.services import Services

HANDLED = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
    "charge.dispute.created",
    *payment_method.EVENTS,
)
_ATTEMPTS = 5
_ID_MAX = 64
_KEY_MAX = 500  # Stripe's longest metadata value


def handle(services: Services, event: dict[str, Any]) -> str:
    """Apply one verified Stripe event. Returns what was done (for logs and tests)."""
    event_id, event_type = str(event.get("id", "")), str(event.get("type", ""))
    if event_type not in HANDLED:
        return "ignored"
    store = services.store
    if store.webhook_event_seen(event_id):
        return "duplicate"
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        store.record_webhook_event(event_id, event_type, services.clock.now())
        return "malformed"
    if event_type in payment_method.EVENTS:
        # The account's payment method, read back from Stripe (never the event's word alone).
        result = payment_method.on_event(services, event_type, event)
    else:
        result = _handle(services, event_type, obj)
    if result.startswith("mismatch"):
        # A signed event that does not match the ledger line or the account it names: a bug, a
        # replay from another account or an attack. Nothing changed; Stripe is answered 200 so
        # it stops retrying.
        logger.error(
            "webhook event does not match what it names",
            extra={"event_id": event_id, "type": event_type, "why": result},
        )
        metrics.add_metric(name="WebhookMismatch", unit="Count", value=1)
    store.record_webhook_event(event_id, event_type, services.clock.now())
    return result


def _handle(services: Services, event_type: str, obj: dict[str, Any]) -> str:
    intent = _intent_of(obj, event_type)
    line = _line_of(services, obj, intent)
    if line is None:
        return "unknown_charge"
    mismatch = _mismatch(services, line, obj, event_type, intent)
    if mismatch:
        return f"mismatch:{mismatch}"
    for _ in range(_ATTEMPTS):
        try:
            return _step(services, line, event_type, obj, intent)
        except Conflict:
            # Another delivery moved the line first: decide again from what is stored now.
            fresh = services.store.reload_charge(line)
            if fresh is None:
                return "unknown_charge"
            line = fresh
    raise Conflict("The ledger line kept changing; Stripe will deliver this event again.")


def _intent_of(obj: dict[str, Any], event_type: str) -> str | None:
    value = obj.get("id") if event_type.startswith("payment_intent.") else obj.get("payment_intent")
    return value if isinstance(value, str) and value.startswith("pi_") else None


def _line_of(services: Services, obj: dict[str, Any], intent: str | None) -> ChargeRecord | None:
    """The ledger line an event names: the metadata we set on the PaymentIntent (charges and
    disputes may not carry it: then the PaymentIntent's own, asked of Stripe)."""
    metadata: Any = obj.get("metadata")
    if not isinstance(metadata, dict) or not metadata.get("charge_id"):
        if intent is None:
            return None
        metadata = services.payments.payment_metadata(intent) or {}
    account_id, charge_id = metadata.get("account_id"), metadata.get("charge_id")
    if not _is_id(account_id, "acc_") or not _is_id(charge_id, "ch_"):
        return None
    assert isinstance(account_id, str) and isinstance(charge_id, str)
    ledger_key = metadata.get("ledger_key")
    if not isinstance(ledger_key, str) or not 0 < len(ledger_key) <= _KEY_MAX:
        ledger_key = None  # found by its id instead (the account's ledger index)
    return services.store.get_charge(account_id, charge_id, ledger_key)


def _is_id(value: Any, prefix: str) -> bool:
    return isinstance(value, str) and value.startswith(prefix) and len(value) <= _ID_MAX


def _mismatch(
    services: Services, line: ChargeRecord, obj: dict[str, Any], event_type: str, intent: str | None
) -> str | None:
    """Why the event does not match the line it names (None when it does)."""
    if intent is None:
        return "no_payment_intent"
    if line.stripe_payment_intent and intent != line.stripe_payment_intent:
        return "payment_intent"
    currency = obj.get("currency")
    if not isinstance(currency, str) or currency.lower() != line.currency.lower():
        return "currency"
    amount = obj.get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool):
        return "amount"
    if event_type == "charge.dispute.created":
        # A dispute may be for part of the payment; it carries no customer, and it was traced
        # to the line through its PaymentIntent.
        return "amount" if not 0 < amount <= line.amount else None
    if amount != line.amount:
        return "amount"
    customer = line.customer_id
    if customer is None:
        account = services.store.get_account(line.account_id)
        customer = account.stripe_customer_id if account else None
    if not customer or obj.get("customer") != customer:
        return "customer"
    return None


def _step(
    services: Services,
    line: ChargeRecord,
    event_type: str,
    obj: dict[str, Any],
    intent: str | None,
) -> str:
    store = services.store
    now = services.clock.now()
    if event_type == "payment_intent.succeeded":
        if RANK[line.status] > RANK[ChargeStatus.SUCCEEDED] or (
            line.status is ChargeStatus.SUCCEEDED and line.applied
        ):
            return "already"
        settlement = settle(services, line, intent, STRIPE)
        return f"succeeded:{settlement.outcome.value}"
    if event_type == "payment_intent.payment_failed":
        if RANK[line.status] >= RANK[ChargeStatus.FAILED]:
            return "stale"
        error = obj.get("last_payment_error")
        message = str(
            (error if isinstance(error, dict) else {}).get("message") or "The card was declined."
        )[:200]
        store.save_charge(
            line,
            replace(
                line,
                status=ChargeStatus.FAILED,
                stripe_payment_intent=intent,
                failure_message=message,
                lease_until=0,
                updated_at=now,
            ),
        )
        _history(
            services, line, "payment_failed", now, {"amount": line.amount, "charge_id": line.id}
        )
        return "failed"
    if event_type == "charge.dispute.created":
        if line.disputed:
            return "duplicate"
        store.save_charge(line, replace(line, disputed=True, updated_at=now))
        _history(
            services,
            line,
            "charge_disputed",
            now,
            {"amount": obj.get("amount"), "reason": str(obj.get("reason") or "")[:100]},
        )
        return "disputed"
    # charge.refunded
    if line.status is ChargeStatus.REFUNDED:
        return "already"
    refunded = obj.get("amount_refunded")
    if obj.get("refunded") is not True and not (
        isinstance(refunded, int) and refunded >= line.amount
    ):
        _history(
            services,
            line,
            "charge_partially_refunded",
            now,
            {"amount": refunded if isinstance(refunded, int) else None, "charge_id": line.id},
        )
        return "partially_refunded"
    if line.stripe_payment_intent is None:
        line = _with_intent(services, line, intent)
    record_refund(services, line, _refund_id(obj), STRIPE)
    return f"refunded:{'applied' if line.applied else 'not_applied'}"


def _with_intent(services: Services, line: ChargeRecord, intent: str | None) -> ChargeRecord:
    after = replace(line, stripe_payment_intent=intent)
    services.store.save_charge(line, after)
    return replace(after, revision=line.revision + 1)


def _refund_id(obj: dict[str, Any]) -> str | None:
    refunds = obj.get("refunds")
    data = refunds.get("data") if isinstance(refunds, dict) else None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        found = data[0].get("id")
        return found if isinstance(found, str) else None
    return None


def _history(
    services: Services, line: ChargeRecord, kind: str, now: datetime, details: dict[str, Any]
) -> None:
    for integration_id in line.integration_ids:
        if services.store.get_integration(line.account_id, integration_id) is not None:
            entry = HistoryEntry(at=now, type=kind, actor=str(STRIPE), details=details)
            services.store.add_history(line.account_id, integration_id, entry, f"{line.id}.{kind}")
