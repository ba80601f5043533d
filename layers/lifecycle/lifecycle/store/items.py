"""Item shapes: the domain's dataclasses to and from DynamoDB attribute values (no keys here)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

from lifecycle.rules.calendar import format_instant, parse_instant
from lifecycle.rules.model import (
    Account,
    AccountStatus,
    BillingState,
    Cancellation,
    CancelReason,
    DomainEvent,
    HistoryEntry,
    Integration,
    Status,
    SuspensionReason,
)
from lifecycle.rules.quotes import Quote, QuoteLine
from lifecycle.rules.users import User, UserStatus

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]


def s(value: str) -> AttributeValue:
    return {"S": value}


def n(value: int) -> AttributeValue:
    return {"N": str(value)}


def t(value: datetime) -> AttributeValue:
    return {"S": format_instant(value)}


def j(value: Any) -> AttributeValue:
    """Opaque JSON kept verbatim as a string (no float-to-Decimal surprises)."""
    return {"S": json.dumps(value, separators=(",", ":"), sort_keys=True)}


def _instant_or_none(value: datetime | None) -> AttributeValue | None:
    return t(value) if value else None


def _enum_or_none(value: Enum | None) -> AttributeValue | None:
    return s(str(value.value)) if value else None


def put_optional(item: Item, name: str, value: AttributeValue | None) -> None:
    if value is not None:
        item[name] = value


def get_s(item: Mapping[str, AttributeValue], name: str) -> str | None:
    value = item.get(name)
    return None if value is None else str(value["S"])


def req_s(item: Mapping[str, AttributeValue], name: str) -> str:
    return str(item[name]["S"])


def get_n(item: Mapping[str, AttributeValue], name: str, default: int = 0) -> int:
    value = item.get(name)
    return default if value is None else int(value["N"])


def get_t(item: Mapping[str, AttributeValue], name: str) -> datetime | None:
    text = get_s(item, name)
    return None if text is None else parse_instant(text)


def req_t(item: Mapping[str, AttributeValue], name: str) -> datetime:
    return parse_instant(req_s(item, name))


def get_j(item: Mapping[str, AttributeValue], name: str) -> Any:
    text = get_s(item, name)
    return None if text is None else json.loads(text)


def _cancellation_json(cancellation: Cancellation | None) -> AttributeValue | None:
    if cancellation is None:
        return None
    return j(
        {
            "reason": cancellation.reason.value,
            "comment": cancellation.comment,
            "requested_at": format_instant(cancellation.requested_at),
        }
    )


def _cancellation(item: Mapping[str, AttributeValue]) -> Cancellation | None:
    data = get_j(item, "cancellation")
    if data is None:
        return None
    return Cancellation(
        reason=CancelReason(data["reason"]),
        comment=data.get("comment"),
        requested_at=parse_instant(data["requested_at"]),
    )


def integration_attributes(integration: Integration) -> Item:
    item: Item = {
        "type": s("integration"),
        "id": s(integration.id),
        "account_id": s(integration.account_id),
        "name": s(integration.name),
        "supplier": s(integration.supplier),
        "channel": s(integration.channel),
        "plan": s(integration.plan),
        "status": s(integration.status.value),
        "billing_state": s(integration.billing_state.value),
        "sync_enabled": {"BOOL": integration.sync_enabled},
        "current_period_start": t(integration.current_period_start),
        "current_period_end": t(integration.current_period_end),
        "anchor": t(integration.anchor),
        "period_index": n(integration.period_index),
        "dunning_attempts": n(integration.dunning_attempts),
        "created_at": t(integration.created_at),
        "currency": s(integration.currency),
        "version": n(integration.version),
    }
    optional = {
        "next_attempt_at": _instant_or_none(integration.next_attempt_at),
        "cancellation": _cancellation_json(integration.cancellation),
        "cancelled_from": _enum_or_none(integration.cancelled_from),
        "suspension_reason": _enum_or_none(integration.suspension_reason),
        "suspended_from": _enum_or_none(integration.suspended_from),
        "suspended_at": _instant_or_none(integration.suspended_at),
    }
    for name, value in optional.items():
        put_optional(item, name, value)
    return item


def integration_from(item: Mapping[str, AttributeValue]) -> Integration:
    cancelled_from = get_s(item, "cancelled_from")
    suspension_reason = get_s(item, "suspension_reason")
    suspended_from = get_s(item, "suspended_from")
    return Integration(
        id=req_s(item, "id"),
        account_id=req_s(item, "account_id"),
        name=req_s(item, "name"),
        supplier=req_s(item, "supplier"),
        channel=req_s(item, "channel"),
        plan=req_s(item, "plan"),
        status=Status(req_s(item, "status")),
        billing_state=BillingState(req_s(item, "billing_state")),
        current_period_start=req_t(item, "current_period_start"),
        current_period_end=req_t(item, "current_period_end"),
        anchor=req_t(item, "anchor"),
        period_index=get_n(item, "period_index"),
        dunning_attempts=get_n(item, "dunning_attempts"),
        next_attempt_at=get_t(item, "next_attempt_at"),
        created_at=req_t(item, "created_at"),
        cancellation=_cancellation(item),
        cancelled_from=Status(cancelled_from) if cancelled_from else None,
        suspension_reason=SuspensionReason(suspension_reason) if suspension_reason else None,
        suspended_from=Status(suspended_from) if suspended_from else None,
        suspended_at=get_t(item, "suspended_at"),
        currency=req_s(item, "currency"),
        version=get_n(item, "version"),
    )


def account_attributes(account: Account) -> Item:
    item: Item = {
        "type": s("account"),
        "id": s(account.id),
        "status": s(account.status.value),
        "currency": s(account.currency),
        "has_payment_method": {"BOOL": account.has_payment_method},
        "created_at": t(account.created_at),
        "version": n(account.version),
    }
    optional = {
        "stripe_customer_id": s(account.stripe_customer_id) if account.stripe_customer_id else None,
        "cancellation": _cancellation_json(account.cancellation),
        "status_changed_at": _instant_or_none(account.status_changed_at),
        "payment_method_id": s(account.payment_method_id) if account.payment_method_id else None,
    }
    for name, value in optional.items():
        put_optional(item, name, value)
    return item


def account_from(item: Mapping[str, AttributeValue]) -> Account:
    return Account(
        id=req_s(item, "id"),
        status=AccountStatus(req_s(item, "status")),
        currency=req_s(item, "currency"),
        stripe_customer_id=get_s(item, "stripe_customer_id"),
        has_payment_method=bool(item.get("has_payment_method", {}).get("BOOL", False)),
        cancellation=_cancellation(item),
        created_at=req_t(item, "created_at"),
        status_changed_at=get_t(item, "status_changed_at"),
        version=get_n(item, "version"),
        payment_method_id=get_s(item, "payment_method_id"),
    )


def user_attributes(user: User) -> Item:
    return {
        "type": s("user"),
        "id": s(user.id),
        "account_id": s(user.account_id),
        "username": s(user.username),
        "email": s(user.email),
        "billing_access": {"BOOL": user.billing_access},
        "status": s(user.status.value),
        "created_at": t(user.created_at),
        "version": n(user.version),
    }


def user_from(item: Mapping[str, AttributeValue]) -> User:
    return User(
        id=req_s(item, "id"),
        account_id=req_s(item, "account_id"),
        username=req_s(item, "username"),
        email=req_s(item, "email"),
        billing_access=bool(item.get("billing_access", {}).get("BOOL", False)),
        status=UserStatus(req_s(item, "status")),
        created_at=req_t(item, "created_at"),
        version=get_n(item, "version", 1),
    )


def history_attributes(entry: HistoryEntry) -> Item:
    return {
        "type": s("history"),
        "at": t(entry.at),
        "entry_type": s(entry.type),
        "actor": s(entry.actor),
        "details": j(dict(entry.details)),
    }


def history_from(item: Mapping[str, AttributeValue]) -> HistoryEntry:
    return HistoryEntry(
        at=req_t(item, "at"),
        type=req_s(item, "entry_type"),
        actor=req_s(item, "actor"),
        details=get_j(item, "details") or {},
    )


def event_attributes(event: DomainEvent, event_id: str, expires_at: int) -> Item:
    item: Item = {
        "type": s("outbox"),
        "event_id": s(event_id),
        "detail_type": s(event.detail_type.value),
        "account_id": s(event.account_id),
        "at": t(event.at),
        "data": j(dict(event.data)),
        "expires_at": n(expires_at),
    }
    put_optional(item, "integration_id", s(event.integration_id) if event.integration_id else None)
    if event.sync_enabled is not None:
        item["sync_enabled"] = {"BOOL": event.sync_enabled}
    return item


def event_detail(item: Mapping[str, AttributeValue]) -> dict[str, Any]:
    """The EventBridge `detail` of an outbox item (what the sync engine receives)."""
    detail: dict[str, Any] = {
        "event_id": req_s(item, "event_id"),
        "account_id": req_s(item, "account_id"),
        "at": req_s(item, "at"),
        **(get_j(item, "data") or {}),
    }
    integration_id = get_s(item, "integration_id")
    if integration_id:
        detail["integration_id"] = integration_id
    if "sync_enabled" in item:
        detail["sync_enabled"] = bool(item["sync_enabled"]["BOOL"])
    return detail


def quote_attributes(quote: Quote, expires_at: int) -> Item:
    return {
        "type": s("quote"),
        "id": s(quote.id),
        "account_id": s(quote.account_id),
        "scope": s(quote.scope),
        "currency": s(quote.currency),
        "created_at": t(quote.created_at),
        "quote_expires_at": t(quote.expires_at),
        "lines": j(
            [
                {
                    "integration_id": line.integration_id,
                    "description": line.description,
                    "amount": line.amount,
                    "period_start": format_instant(line.period_start),
                    "period_end": format_instant(line.period_end),
                }
                for line in quote.lines
            ]
        ),
        "versions": j(dict(quote.versions)),
        "expires_at": n(expires_at),
    }


def quote_from(item: Mapping[str, AttributeValue]) -> Quote:
    return Quote(
        id=req_s(item, "id"),
        account_id=req_s(item, "account_id"),
        scope=req_s(item, "scope"),
        currency=req_s(item, "currency"),
        created_at=req_t(item, "created_at"),
        expires_at=req_t(item, "quote_expires_at"),
        lines=tuple(
            QuoteLine(
                integration_id=line["integration_id"],
                description=line["description"],
                amount=int(line["amount"]),
                period_start=parse_instant(line["period_start"]),
                period_end=parse_instant(line["period_end"]),
            )
            for line in get_j(item, "lines") or []
        ),
        versions={k: int(v) for k, v in (get_j(item, "versions") or {}).items()},
    )
