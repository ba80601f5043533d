"""The dashboard API's response models (api.md) and the domain objects mapped to them.

The use cases answer with these; the OpenAPI document is generated from them and
`lifecycle.usecases.requests`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lifecycle.rules.calendar import format_instant
from lifecycle.rules.catalog import Catalog
from lifecycle.rules.model import (
    GRACE_PERIOD,
    AccountStatus,
    BillingState,
    CancelReason,
    HistoryEntry,
    Integration,
    Status,
    renewal_fee,
)
from lifecycle.rules.quotes import Quote, QuoteLine


class ApiModel(BaseModel):
    """Every model of the API. Validators and serializers are built on first use, not at import
    (`defer_build`): a function builds the models of its own routes, when a route needs them,
    rather than all of them on every cold start."""

    model_config = ConfigDict(defer_build=True)


class ScheduledChange(ApiModel):
    action: Literal["freeze", "cancel", "suspend"]
    effective_at: str


class NextCharge(ApiModel):
    amount: int
    at: str


class CancellationView(ApiModel):
    reason: CancelReason
    comment: str | None
    requested_at: str


class IntegrationView(ApiModel):
    id: str
    name: str
    supplier: str
    channel: str
    plan: str
    status: str
    billing_state: str
    sync_enabled: bool
    monthly_fee: int
    frozen_fee: int
    currency: str
    current_period_start: str
    current_period_end: str
    scheduled_change: ScheduledChange | None
    next_charge: NextCharge | None
    cancellation: CancellationView | None
    suspension_reason: str | None
    settings: dict[str, Any] | None = Field(
        description="The settings documents; null in list pages (read one integration for them)."
    )
    created_at: str
    version: int


class IntegrationPage(ApiModel):
    items: list[IntegrationView]
    next_cursor: str | None


class QuoteLineView(ApiModel):
    integration_id: str
    description: str
    amount: int
    period_start: str
    period_end: str


class QuoteView(ApiModel):
    id: str | None
    amount: int
    currency: str
    lines: list[QuoteLineView]
    expires_at: str | None


class HistoryItem(ApiModel):
    at: str
    type: str
    actor: str
    details: dict[str, Any]


class HistoryView(ApiModel):
    items: list[HistoryItem]


class ProblemView(ApiModel):
    model_config = ConfigDict(extra="allow")

    status: int
    code: str
    title: str
    detail: str


class BulkItemResult(ApiModel):
    id: str
    ok: bool
    integration: IntegrationView | None = None
    error: ProblemView | None = None


class BulkResult(ApiModel):
    results: list[BulkItemResult]


class AccountView(ApiModel):
    id: str
    status: str
    currency: str
    billing_access: bool
    counts: dict[str, int]
    next_renewal_at: str | None
    has_payment_method: bool


class UpcomingCharge(ApiModel):
    integration_id: str
    at: str
    amount: int
    description: str


class UpcomingCharges(ApiModel):
    items: list[UpcomingCharge]
    total: int


class ActivityView(ApiModel):
    items: list[HistoryItem]


class ChargeView(ApiModel):
    id: str
    amount: int
    currency: str
    status: str
    description: str
    integration_ids: list[str]
    created_at: str
    stripe_payment_intent: str | None
    # Set once the charge succeeded (it has a receipt: GET /v1/account/charges/{id}/receipt).
    receipt_number: str | None = None


class ChargePage(ApiModel):
    items: list[ChargeView]
    next_cursor: str | None


class PortalView(ApiModel):
    url: str


class CheckoutView(ApiModel):
    url: str = Field(description="A Stripe Checkout Session (setup mode): send the browser there.")


class UserView(ApiModel):
    id: str
    email: str
    billing_access: bool
    status: Literal["invited", "active"]
    created_at: str


class UserPage(ApiModel):
    items: list[UserView]


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
