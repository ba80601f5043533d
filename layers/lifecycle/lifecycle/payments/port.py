"""The payments port: what a use case needs from a payment provider, and nothing more."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class PaymentOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # declined or needs the customer: final for this attempt
    PENDING = "pending"  # outage, timeout, 5xx: unknown; reconcile later, never charge again


@dataclass(frozen=True, slots=True)
class PaymentResult:
    outcome: PaymentOutcome
    payment_intent_id: str | None = None
    # A short, card-data-free reason for the merchant ("Your card was declined.").
    failure_message: str | None = None
    failure_code: str | None = None


@dataclass(frozen=True, slots=True)
class RefundResult:
    """A refund Stripe accepted (`succeeded` or `pending`: the money is on its way back) or
    refused (`failed`)."""

    outcome: PaymentOutcome
    refund_id: str | None = None
    amount: int = 0


@dataclass(frozen=True, slots=True)
class CustomerState:
    """What Stripe says of a customer: the account it was made for (metadata `account_id`, set
    by `create_customer`) and its default payment method (None: none, or deleted)."""

    customer_id: str
    account_id: str | None
    default_payment_method: str | None
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class SetupResult:
    """A SetupIntent as Stripe has it: `payment_method` is usable once `status` is succeeded."""

    setup_intent_id: str
    status: str
    customer_id: str | None
    payment_method: str | None


@dataclass(frozen=True, slots=True)
class MoneyRequest:
    """Money moved once however often it is asked for: `amount` in the currency's minor unit
    (cents), `idempotency_key` what Stripe knows a repeat by, `metadata` the ids the object
    carries for webhooks and reconciliation."""

    amount: int
    idempotency_key: str
    metadata: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class PaymentRequest(MoneyRequest):
    """A charge of the customer's default payment method."""

    customer_id: str
    currency: str
    description: str


@dataclass(frozen=True, slots=True)
class RefundRequest(MoneyRequest):
    """A refund of a succeeded PaymentIntent (of its whole amount or less)."""

    payment_intent_id: str


@dataclass(frozen=True, slots=True)
class SetupRequest:
    """A hosted page where the customer adds a card; the browser returns to `success_url` or
    `cancel_url`."""

    customer_id: str
    account_id: str
    currency: str
    success_url: str
    cancel_url: str


class PaymentsUnavailable(Exception):
    """The provider could not be reached or answered 429/5xx; the caller may retry later."""


class Payments(Protocol):
    def charge(self, request: PaymentRequest) -> PaymentResult:
        """Charge the customer's default payment method off-session, confirmed at once.

        Never raises for a decline (FAILED) or for an unknown outcome (PENDING)."""
        ...

    def find(self, *, customer_id: str, charge_id: str) -> PaymentResult | None:
        """The PaymentIntent created for `charge_id` (metadata), if any: reconciliation after a
        crash or timeout, since provider idempotency keys expire after 24 hours."""
        ...

    def payment_metadata(self, payment_intent_id: str) -> Mapping[str, str] | None:
        """The metadata we set on a PaymentIntent (account_id, charge_id...): disputes do not
        carry it, so a dispute is traced to its ledger line through its PaymentIntent."""
        ...

    def refund(self, request: RefundRequest) -> RefundResult:
        """Refund `amount` of a succeeded PaymentIntent. Raises PaymentsUnavailable when the
        outcome is unknown (the caller looks the refund up with `find_refund` before retrying)."""
        ...

    def find_refund(self, *, payment_intent_id: str) -> RefundResult | None:
        """The refund already made on a PaymentIntent, if any (reconciliation after a crash)."""
        ...

    def billing_portal_url(self, *, customer_id: str, return_url: str) -> str:
        """A customer portal session URL where the merchant manages payment methods."""
        ...

    def create_customer(self, *, account_id: str, idempotency_key: str) -> str:
        """A new customer for `account_id` (in its metadata: every event about the customer is
        traced back to the account by id); the same customer for the same key within the
        provider's idempotency window. Raises PaymentsUnavailable."""
        ...

    def setup_session_url(self, request: SetupRequest) -> str:
        """A hosted page (Stripe Checkout in `setup` mode) where the customer adds a card for
        later off-session charges; its completion is reported by webhook."""
        ...

    def setup_result(self, setup_intent_id: str) -> SetupResult | None:
        """The SetupIntent a completed setup session made (None: no such SetupIntent)."""
        ...

    def set_default_payment_method(self, *, customer_id: str, payment_method_id: str) -> None:
        """Make the payment method the customer's default (invoice settings): what charges use."""
        ...

    def customer_state(self, customer_id: str) -> CustomerState | None:
        """The customer as Stripe has it now (None: no such customer)."""
        ...
