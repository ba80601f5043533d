"""The dashboard API's request models (api.md): what the handlers parse and the use cases take.

Request models forbid unknown fields: a client can never set status, fees, periods, version or
the account (mass assignment is a 422, and nothing is persisted). The OpenAPI document is
generated from these and `lifecycle.usecases.views`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints

from lifecycle.rules.model import CancelReason
from lifecycle.usecases.views import ApiModel

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Slug = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Comment = Annotated[str, StringConstraints(max_length=1000)]
IntegrationId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


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
