"""What a succeeded charge bought, line by line, and the event that says it was paid.

Computed once, from the decisions a paid action applied, and kept on the ledger line: a receipt
is rendered from the line alone (nothing to keep in sync, whatever the quote's expiry)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from lifecycle.rules.calendar import format_instant, normalize, whole_seconds
from lifecycle.rules.catalog import Catalog
from lifecycle.rules.ledger import ChargeRecord, ReceiptItem
from lifecycle.rules.model import Decision, DetailType, DomainEvent, Status
from lifecycle.rules.money import format_amount
from lifecycle.rules.paid import Applied, PaidAction, UnfreezePaid

_FEES = {Status.ACTIVE: "monthly fee", Status.FROZEN: "frozen fee"}


def _decisions(applied: Applied) -> list[Decision]:
    found = [applied.integration] if applied.integration is not None else []
    if applied.account is not None:
        found += list(applied.account.integrations)
    return [d for d in found if d.after is not None and not d.noop]


def _fee_of(status: Status, catalog: Catalog, plan: str) -> int:
    return catalog.frozen_fee if status is Status.FROZEN else catalog.monthly_fee(plan)


def receipt_items(
    action: PaidAction,
    applied: Applied,
    amount: int,
    now: datetime,
    catalog: Catalog,
    description: str,
) -> tuple[ReceiptItem, ...]:
    """One item per integration the payment changed: its name and plan, what fee it paid for
    which period, the amount, and the proration when the amount is part of a fee. The items
    add up to `amount`; when they would not (a catalog changed meanwhile), the charge is one
    item with its own description."""
    now = normalize(now)
    items = []
    for decision in _decisions(applied):
        after = decision.after
        assert after is not None
        if isinstance(action, UnfreezePaid) and decision.before is not None:
            before = decision.before
            full = max(catalog.monthly_fee(after.plan) - catalog.frozen_fee, 0)
            length = whole_seconds(before.current_period_end - before.current_period_start)
            left = whole_seconds(before.current_period_end - max(now, before.current_period_start))
            items.append(
                ReceiptItem(
                    integration_id=after.id,
                    name=after.name,
                    plan=after.plan,
                    fee="unfreeze: monthly fee less frozen fee",
                    period_start=max(now, before.current_period_start),
                    period_end=before.current_period_end,
                    amount=amount,
                    proration=(
                        f"{format_amount(full, catalog.currency)} x {left / 86_400:.2f} of"
                        f" {length / 86_400:.2f} days left in the period"
                    ),
                )
            )
            continue
        status = Status.FROZEN if after.status is Status.FROZEN else Status.ACTIVE
        items.append(
            ReceiptItem(
                integration_id=after.id,
                name=after.name,
                plan=after.plan,
                fee=_FEES[status],
                period_start=after.current_period_start,
                period_end=after.current_period_end,
                amount=_fee_of(status, catalog, after.plan),
            )
        )
    if len(items) == 1:
        return (_with_amount(items[0], amount),)
    if not items or sum(item.amount for item in items) != amount:
        return (
            ReceiptItem(
                integration_id="",
                name=description,
                plan="",
                fee="charge",
                period_start=now,
                period_end=now,
                amount=amount,
            ),
        )
    return tuple(items)


def _with_amount(item: ReceiptItem, amount: int) -> ReceiptItem:
    if item.amount == amount:
        return item
    return replace(item, amount=amount)


def charge_succeeded(line: ChargeRecord, now: datetime) -> DomainEvent:
    """`ChargeSucceeded` of a line that is succeeded and applied, with its receipt number."""
    items = line.receipt_items
    starts = [i.period_start for i in items if i.period_end > i.period_start]
    ends = [i.period_end for i in items if i.period_end > i.period_start]
    return DomainEvent(
        detail_type=DetailType.CHARGE_SUCCEEDED,
        account_id=line.account_id,
        at=normalize(now),
        integration_id=line.integration_ids[0] if line.integration_ids else None,
        data={
            "charge_id": line.id,
            "amount": line.amount,
            "currency": line.currency,
            "integration_ids": list(line.integration_ids),
            "receipt_number": line.receipt_number,
            "description": line.description,
            "period": {
                "start": format_instant(min(starts)) if starts else None,
                "end": format_instant(max(ends)) if ends else None,
            },
            "items": [
                {
                    "integration_id": i.integration_id,
                    "name": i.name,
                    "plan": i.plan,
                    "fee": i.fee,
                    "period_start": format_instant(i.period_start),
                    "period_end": format_instant(i.period_end),
                    "amount": i.amount,
                }
                for i in items
            ],
        },
    )
