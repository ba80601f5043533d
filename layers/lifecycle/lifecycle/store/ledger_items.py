"""Ledger lines to and from DynamoDB attribute values: the line, its paid action (a tagged JSON
document) and its receipt items (no keys here: `lifecycle.store.keys`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lifecycle.rules.calendar import format_instant, parse_instant
from lifecycle.rules.ledger import ChargeRecord, ChargeStatus, ReceiptItem
from lifecycle.rules.paid import (
    AccountReactivationPaid,
    CreatePaid,
    PaidAction,
    ReinstatePaid,
    RenewalPaid,
    UnfreezePaid,
)
from lifecycle.store.items import (
    AttributeValue,
    Item,
    get_j,
    get_n,
    get_s,
    get_t,
    j,
    n,
    put_optional,
    req_s,
    req_t,
    s,
    t,
)


def paid_action_document(action: PaidAction | None) -> dict[str, Any]:
    """A paid action as a tagged JSON object (`kind` names the variant)."""
    match action:
        case None:
            return {}
        case CreatePaid():
            return {
                "kind": "create",
                "integration_id": action.integration_id,
                "name": action.name,
                "supplier": action.supplier,
                "channel": action.channel,
                "plan": action.plan,
            }
        case UnfreezePaid():
            return {
                "kind": "unfreeze",
                "integration_id": action.integration_id,
                "period_start": format_instant(action.period_start),
                "quote_id": action.quote_id,
            }
        case ReinstatePaid():
            return {
                "kind": "reinstate",
                "integration_id": action.integration_id,
                "suspended_at": format_instant(action.suspended_at),
                "quote_id": action.quote_id,
            }
        case AccountReactivationPaid():
            return {
                "kind": "account_reactivation",
                "disabled_at": format_instant(action.disabled_at) if action.disabled_at else None,
                "integration_ids": list(action.integration_ids),
                "quote_id": action.quote_id,
            }
        case RenewalPaid():
            return {
                "kind": "renewal",
                "integration_id": action.integration_id,
                "period_start": format_instant(action.period_start),
            }


def paid_action_from(document: Mapping[str, Any] | None) -> PaidAction | None:
    """The paid action of a stored line; None for a line without one (nothing to apply)."""
    if not document:
        return None
    kind = document.get("kind")
    if kind == "create":
        return CreatePaid(
            integration_id=str(document["integration_id"]),
            name=str(document["name"]),
            supplier=str(document["supplier"]),
            channel=str(document["channel"]),
            plan=str(document["plan"]),
        )
    if kind == "unfreeze":
        return UnfreezePaid(
            integration_id=str(document["integration_id"]),
            period_start=parse_instant(str(document["period_start"])),
            quote_id=str(document["quote_id"]),
        )
    if kind == "reinstate":
        return ReinstatePaid(
            integration_id=str(document["integration_id"]),
            suspended_at=parse_instant(str(document["suspended_at"])),
            quote_id=str(document["quote_id"]),
        )
    if kind == "account_reactivation":
        disabled_at = document.get("disabled_at")
        return AccountReactivationPaid(
            disabled_at=parse_instant(str(disabled_at)) if disabled_at else None,
            integration_ids=tuple(str(i) for i in document.get("integration_ids") or ()),
            quote_id=str(document["quote_id"]),
        )
    if kind == "renewal":
        return RenewalPaid(
            integration_id=str(document["integration_id"]),
            period_start=parse_instant(str(document["period_start"])),
        )
    return None


def charge_attributes(charge: ChargeRecord) -> Item:
    item: Item = {
        "type": s("charge"),
        "id": s(charge.id),
        "account_id": s(charge.account_id),
        "ledger_key": s(charge.ledger_key),
        "kind": s(charge.kind),
        "amount": n(charge.amount),
        "currency": s(charge.currency),
        "description": s(charge.description),
        "integration_ids": j(list(charge.integration_ids)),
        "status": s(charge.status.value),
        "attempt": n(charge.attempt),
        "applied": {"BOOL": charge.applied},
        "action": j(paid_action_document(charge.action)),
        "request_ref": s(charge.request_ref),
        "created_at": t(charge.created_at),
        "updated_at": t(charge.updated_at),
        "lease_until": n(charge.lease_until),
        "disputed": {"BOOL": charge.disputed},
        "revision": n(charge.revision),
    }
    for name, value in (
        ("customer_id", charge.customer_id),
        ("stripe_payment_intent", charge.stripe_payment_intent),
        ("failure_message", charge.failure_message),
        ("refund_reason", charge.refund_reason),
        ("refund_id", charge.refund_id),
        ("supersedes", charge.supersedes),
        ("superseded_by", charge.superseded_by),
    ):
        put_optional(item, name, s(value) if value else None)
    if charge.receipt_number:
        item["receipt_number"] = s(charge.receipt_number)
        put_optional(item, "succeeded_at", t(charge.succeeded_at) if charge.succeeded_at else None)
        item["receipt_items"] = j([_receipt_item_document(i) for i in charge.receipt_items])
    return item


def _receipt_item_document(item: ReceiptItem) -> dict[str, Any]:
    return {
        "integration_id": item.integration_id,
        "name": item.name,
        "plan": item.plan,
        "fee": item.fee,
        "period_start": format_instant(item.period_start),
        "period_end": format_instant(item.period_end),
        "amount": item.amount,
        "proration": item.proration,
    }


def _receipt_item(document: Mapping[str, Any]) -> ReceiptItem:
    return ReceiptItem(
        integration_id=str(document["integration_id"]),
        name=str(document["name"]),
        plan=str(document["plan"]),
        fee=str(document["fee"]),
        period_start=parse_instant(str(document["period_start"])),
        period_end=parse_instant(str(document["period_end"])),
        amount=int(document["amount"]),
        proration=document.get("proration"),
    )


def charge_from(item: Mapping[str, AttributeValue]) -> ChargeRecord:
    return ChargeRecord(
        id=req_s(item, "id"),
        account_id=req_s(item, "account_id"),
        ledger_key=req_s(item, "ledger_key"),
        kind=req_s(item, "kind"),
        amount=get_n(item, "amount"),
        currency=req_s(item, "currency"),
        description=req_s(item, "description"),
        integration_ids=tuple(get_j(item, "integration_ids") or ()),
        status=ChargeStatus(req_s(item, "status")),
        attempt=get_n(item, "attempt", 1),
        applied=bool(item.get("applied", {}).get("BOOL", False)),
        action=paid_action_from(get_j(item, "action")),
        request_ref=get_s(item, "request_ref") or req_s(item, "ledger_key"),
        customer_id=get_s(item, "customer_id"),
        created_at=req_t(item, "created_at"),
        updated_at=req_t(item, "updated_at"),
        stripe_payment_intent=get_s(item, "stripe_payment_intent"),
        failure_message=get_s(item, "failure_message"),
        lease_until=get_n(item, "lease_until"),
        disputed=bool(item.get("disputed", {}).get("BOOL", False)),
        refund_reason=get_s(item, "refund_reason"),
        refund_id=get_s(item, "refund_id"),
        supersedes=get_s(item, "supersedes"),
        superseded_by=get_s(item, "superseded_by"),
        receipt_number=get_s(item, "receipt_number"),
        succeeded_at=get_t(item, "succeeded_at"),
        receipt_items=tuple(_receipt_item(i) for i in get_j(item, "receipt_items") or ()),
        revision=get_n(item, "revision"),
    )
