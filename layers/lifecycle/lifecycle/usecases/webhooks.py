"""Stripe's webhook events, applied to the ledger (and to the action a payment was waiting on).

Events arrive late, twice, concurrently and in any order. Each handler moves a ledger line
only forward along one order of precedence, with a conditional write re-read on a lost race,
so the final state depends on the set of events received, not on their order:

    pending -> failed -> succeeded -> refunded        (disputed is a flag beside the status)

A refund seen before the success it refunds implies that success: the paid action is applied
either way, so both orders end the same.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from lifecycle.observability import logger, record_events
from lifecycle.rules.account import AccountAction, AccountCommand, decide_account, reopen_for_create
from lifecycle.rules.calendar import parse_instant
from lifecycle.rules.errors import Conflict
from lifecycle.rules.integration import NewIntegration, QuoteRef, create, reactivated
from lifecycle.rules.model import (
    STRIPE,
    AccountDecision,
    AccountStatus,
    Decision,
    HistoryEntry,
    Status,
)
from lifecycle.rules.renewal import renewed
from lifecycle.store.ledger import ChargeRecord, ChargeStatus
from lifecycle.usecases.services import Services

HANDLED = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
    "charge.dispute.created",
)
_RANK = {
    ChargeStatus.PENDING: 0,
    ChargeStatus.FAILED: 1,
    ChargeStatus.WRITTEN_OFF: 1,
    ChargeStatus.SUCCEEDED: 2,
    ChargeStatus.REFUNDED: 3,
}
_ATTEMPTS = 5


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
    line = _line_of(services, obj, event_type)
    result = "unknown_charge" if line is None else _apply(services, line, event_type, obj)
    store.record_webhook_event(event_id, event_type, services.clock.now())
    return result


def _line_of(services: Services, obj: dict[str, Any], event_type: str) -> ChargeRecord | None:
    """The ledger line an event is about, from the metadata we set on the PaymentIntent."""
    metadata: Any = obj.get("metadata")
    if not isinstance(metadata, dict) or not metadata.get("charge_id"):
        intent = (
            obj.get("id") if event_type.startswith("payment_intent.") else obj.get("payment_intent")
        )
        if not isinstance(intent, str) or not intent.startswith("pi_"):
            return None
        if event_type.startswith("payment_intent."):
            return None  # our PaymentIntents always carry their metadata
        metadata = services.payments.payment_metadata(intent) or {}
    account_id, charge_id = metadata.get("account_id"), metadata.get("charge_id")
    if (
        not isinstance(account_id, str)
        or not isinstance(charge_id, str)
        or not account_id
        or not charge_id
    ):
        return None
    if len(account_id) > 64 or len(charge_id) > 64:
        return None
    return services.store.get_charge(account_id, charge_id)


def _apply(services: Services, line: ChargeRecord, event_type: str, obj: dict[str, Any]) -> str:
    now = services.clock.now()
    for _ in range(_ATTEMPTS):
        try:
            return _step(services, line, event_type, obj, now)
        except Conflict:
            # Another delivery moved the line first: decide again from what is stored now.
            fresh = services.store.get_charge(line.account_id, line.id)
            if fresh is None:
                return "unknown_charge"
            line = fresh
    raise Conflict("The ledger line kept changing; Stripe will deliver this event again.")


def _step(
    services: Services, line: ChargeRecord, event_type: str, obj: dict[str, Any], now: datetime
) -> str:
    store = services.store
    intent = (
        obj.get("id") if event_type.startswith("payment_intent.") else obj.get("payment_intent")
    )
    intent = str(intent) if intent else line.stripe_payment_intent
    if event_type == "payment_intent.payment_failed":
        if _RANK[line.status] >= _RANK[ChargeStatus.FAILED] or intent != (
            line.stripe_payment_intent or intent
        ):
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
            {
                "amount": _cents(obj.get("amount"), line.amount),
                "reason": str(obj.get("reason") or "")[:100],
            },
        )
        return "disputed"
    target = ChargeStatus.REFUNDED if event_type == "charge.refunded" else ChargeStatus.SUCCEEDED
    if _RANK[line.status] >= _RANK[target] and line.applied:
        return "already"
    status = target if _RANK[target] > _RANK[line.status] else line.status
    after = replace(line, status=status, stripe_payment_intent=intent, applied=True, updated_at=now)
    if line.applied:
        store.save_charge(line, after)
        applied = "already"
    else:
        applied = _apply_action(services, line, after, now)
    if target is ChargeStatus.REFUNDED:
        _history(
            services,
            line,
            "charge_refunded",
            now,
            {"amount": _cents(obj.get("amount_refunded"), line.amount), "charge_id": line.id},
        )
    return f"{status.value}:{applied}"


def _history(
    services: Services, line: ChargeRecord, kind: str, now: datetime, details: dict[str, Any]
) -> None:
    for integration_id in line.integration_ids:
        if services.store.get_integration(line.account_id, integration_id) is not None:
            entry = HistoryEntry(at=now, type=kind, actor=str(STRIPE), details=details)
            services.store.add_history(line.account_id, integration_id, entry, f"{line.id}.{kind}")


def _apply_action(
    services: Services, line: ChargeRecord, after: ChargeRecord, now: datetime
) -> str:
    """Apply what `line` paid for (it was waiting: the payment was confirmed late), together
    with the line's new state. When the state moved on and the action no longer applies, the
    line is kept paid but not applied, and logged for a refund."""
    store = services.store
    action = dict(line.action)
    kind = action.get("type")
    account = store.get_account(line.account_id)
    decision: Decision | None = None
    account_decision: AccountDecision | None = None
    if kind == "create_integration":
        integration_id = str(action["integration_id"])
        if store.get_integration(line.account_id, integration_id) is None and account is not None:
            request = NewIntegration(
                **{k: action["request"][k] for k in ("name", "supplier", "channel", "plan")}
            )
            decision = create(integration_id, account, request, now, STRIPE, services.catalog)
            decision = replace(decision, charge=None)
            account_decision = reopen_for_create(account, now, STRIPE)
    elif kind == "reactivate_integration":
        integration = store.get_integration(line.account_id, str(action["integration_id"]))
        if integration is not None and integration.status in (Status.FROZEN, Status.SUSPENDED):
            decision = reactivated(integration, now, STRIPE, line.amount)
    elif kind == "renewal":
        integration = store.get_integration(line.account_id, str(action["integration_id"]))
        period_start = action.get("period_start")
        if (
            integration is not None
            and period_start
            and integration.current_period_end == parse_instant(str(period_start))
            and integration.billable
        ):
            decision = renewed(integration, now, services.catalog)[0]
    elif (
        kind == "reactivate_account"
        and account is not None
        and account.status is AccountStatus.DISABLED
    ):
        command = AccountCommand(
            AccountAction.REACTIVATE,
            STRIPE,
            quote=QuoteRef(str(action.get("quote_id")), line.amount),
        )
        account_decision = replace(
            decide_account(
                account,
                command,
                now,
                integrations=store.all_integrations(account.id),
                catalog=services.catalog,
            ),
            charge=None,
        )
    if decision is None and (account_decision is None or kind != "reactivate_account"):
        logger.warning(
            "paid action no longer applies: refund it",
            extra={"charge_id": line.id, "account_id": line.account_id, "action": kind},
        )
        store.save_charge(line, replace(after, applied=False))
        return "not_applicable"
    store.commit(decision, account=account_decision, extra=[store.charge_write(line, after)])
    record_events(
        (
            *(decision.events if decision else ()),
            *(account_decision.events if account_decision else ()),
        )
    )
    return "applied"


def _cents(value: Any, default: int) -> int:
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default
    )
