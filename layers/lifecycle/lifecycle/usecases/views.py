"""Domain objects to the API's response models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lifecycle.http.models import (
    CancellationView,
    HistoryItem,
    IntegrationView,
    NextCharge,
    QuoteLineView,
    QuoteView,
    ScheduledChange,
)
from lifecycle.rules.calendar import format_instant
from lifecycle.rules.catalog import Catalog
from lifecycle.rules.model import (
    GRACE_PERIOD,
    AccountStatus,
    BillingState,
    HistoryEntry,
    Integration,
    Status,
    renewal_fee,
)
from lifecycle.rules.quotes import Quote, QuoteLine


def scheduled_change(
    integration: Integration, account_status: AccountStatus
) -> ScheduledChange | None:
    end = format_instant(integration.current_period_end)
    if integration.status is Status.FREEZE_PENDING and account_status is AccountStatus.ACTIVE:
        return ScheduledChange(action="freeze", effective_at=end)
    if integration.status is Status.CANCEL_PENDING:
        return ScheduledChange(action="cancel", effective_at=end)
    if integration.billable and account_status is not AccountStatus.ACTIVE:
        return ScheduledChange(action="suspend", effective_at=end)
    if integration.billing_state is BillingState.PAST_DUE:
        return ScheduledChange(
            action="suspend",
            effective_at=format_instant(integration.current_period_end + GRACE_PERIOD),
        )
    return None


def next_charge(
    integration: Integration, account_status: AccountStatus, catalog: Catalog
) -> NextCharge | None:
    if account_status is not AccountStatus.ACTIVE:
        return None
    fee = renewal_fee(integration.status, catalog.monthly_fee(integration.plan), catalog.frozen_fee)
    if not fee:
        return None
    at = integration.current_period_end
    if integration.billing_state is BillingState.PAST_DUE and integration.next_attempt_at:
        at = integration.next_attempt_at
    return NextCharge(amount=fee, at=format_instant(at))


def integration_view(
    integration: Integration,
    account_status: AccountStatus,
    catalog: Catalog,
    settings: dict[str, Any] | None,
) -> IntegrationView:
    cancellation = integration.cancellation
    return IntegrationView(
        id=integration.id,
        name=integration.name,
        supplier=integration.supplier,
        channel=integration.channel,
        plan=integration.plan,
        status=integration.status.value,
        billing_state=integration.billing_state.value,
        sync_enabled=integration.sync_enabled,
        monthly_fee=catalog.monthly_fee(integration.plan),
        frozen_fee=catalog.frozen_fee,
        currency=integration.currency,
        current_period_start=format_instant(integration.current_period_start),
        current_period_end=format_instant(integration.current_period_end),
        scheduled_change=scheduled_change(integration, account_status),
        next_charge=next_charge(integration, account_status, catalog),
        cancellation=CancellationView(
            reason=cancellation.reason,
            comment=cancellation.comment,
            requested_at=format_instant(cancellation.requested_at),
        )
        if cancellation
        else None,
        suspension_reason=integration.suspension_reason.value
        if integration.suspension_reason
        else None,
        settings=None if settings is None else _settings_document(settings),
        created_at=format_instant(integration.created_at),
        version=integration.version,
    )


def _settings_document(settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "pricing_rules": settings.get("pricing_rules", {}),
        "category_mapping": settings.get("category_mapping", {}),
        "catalog_rules": settings.get("catalog_rules", {}),
    }


def line_view(line: QuoteLine) -> QuoteLineView:
    return QuoteLineView(
        integration_id=line.integration_id,
        description=line.description,
        amount=line.amount,
        period_start=format_instant(line.period_start),
        period_end=format_instant(line.period_end),
    )


def quote_view(quote: Quote) -> QuoteView:
    return QuoteView(
        id=quote.id,
        amount=quote.amount,
        currency=quote.currency,
        lines=[line_view(line) for line in quote.lines],
        expires_at=format_instant(quote.expires_at),
    )


def free_quote(currency: str) -> QuoteView:
    return QuoteView(id=None, amount=0, currency=currency, lines=[], expires_at=None)


def history_items(entries: Sequence[HistoryEntry]) -> list[HistoryItem]:
    return [
        HistoryItem(at=format_instant(e.at), type=e.type, actor=e.actor, details=dict(e.details))
        for e in entries
    ]
