"""Request and response models of the dashboard API (api.md); the OpenAPI document comes from here.

Request models forbid unknown fields: a client can never set status, fees, periods, version or
the account (mass assignment is a 422, and nothing is persisted).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from lifecycle.rules.model import CancelReason

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Slug = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Comment = Annotated[str, StringConstraints(max_length=1000)]
IntegrationId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class ApiModel(BaseModel):
    """Every model of the API. Validators and serializers are built on first use, not at import
    (`defer_build`): a function builds the models of its own routes, when a route needs them,
    rather than all of them on every cold start."""

    model_config = ConfigDict(defer_build=True)


class Request(ApiModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateIntegration(Request):
    name: Name
    supplier: Slug
    channel: Slug
    plan: Slug = Field(description="A plan of the price catalog: starter, standard or premium.")


class Settings(Request):
    """Opaque JSON documents, kept verbatim (64 KiB at most in all)."""

    pricing_rules: dict[str, Any] = Field(default_factory=dict)
    category_mapping: dict[str, Any] = Field(default_factory=dict)
    catalog_rules: dict[str, Any] = Field(default_factory=dict)


class Cancel(Request):
    reason: CancelReason
    comment: Comment | None = None


class Reactivate(Request):
    quote_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


class Bulk(Request):
    action: Literal["freeze", "cancel", "reactivate"]
    # The 100-id limit is checked by the use case so that it answers 413, not 422.
    ids: list[IntegrationId] = Field(min_length=1)
    reason: CancelReason | None = None
    comment: Comment | None = None


ReturnUrl = Annotated[str, StringConstraints(pattern=r"^https?://", max_length=2000)]
# An address as a person types it: one @, no spaces, a dot in the domain (the directory checks
# the rest). 254 characters at most (RFC 5321's path limit).
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=254, pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"
    ),
]


class BillingPortal(Request):
    return_url: ReturnUrl


class PaymentMethodSetup(Request):
    return_url: ReturnUrl = Field(
        description="Where Stripe Checkout sends the browser back to, done or cancelled."
    )


class InviteUser(Request):
    email: Email
    billing_access: bool = False


class UpdateUser(Request):
    billing_access: bool


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
