"""An in-memory payments provider that records every charge (unit tests, no network)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from lifecycle.payments.port import (
    CustomerState,
    PaymentOutcome,
    PaymentRequest,
    PaymentResult,
    RefundRequest,
    RefundResult,
    SetupRequest,
    SetupResult,
)


@dataclass(frozen=True, slots=True)
class FakeCharge:
    """A charge asked of the fake, and what it answered."""

    request: PaymentRequest
    result: PaymentResult


@dataclass
class FakePayments:
    """Cards per customer: `ok`, `declined` or `unavailable` (answers PENDING, charges nothing)."""

    cards: dict[str, str] = field(default_factory=dict)
    charges: list[FakeCharge] = field(default_factory=list)
    # payment intent id -> the refund made on it
    refunds: dict[str, RefundResult] = field(default_factory=dict)
    customers: dict[str, CustomerState] = field(default_factory=dict)
    customer_keys: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, SetupRequest] = field(default_factory=dict)
    setups: dict[str, SetupResult] = field(default_factory=dict)
    # payment method id -> (customer id, card)
    payment_methods: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def charge(self, request: PaymentRequest) -> PaymentResult:
        with self._lock:
            card = self.cards.get(request.customer_id, "ok")
            if card == "unavailable":
                return PaymentResult(PaymentOutcome.PENDING)
            intent = f"pi_fake_{next(self._ids)}"
            if card == "declined":
                result = PaymentResult(
                    PaymentOutcome.FAILED, intent, "Your card was declined.", "card_declined"
                )
            else:
                result = PaymentResult(PaymentOutcome.SUCCEEDED, intent)
            # A copy of the metadata: the caller's mapping may change after the call.
            self.charges.append(
                FakeCharge(replace(request, metadata=dict(request.metadata)), result)
            )
            return result

    def find(self, *, customer_id: str, charge_id: str) -> PaymentResult | None:
        with self._lock:
            for charge in reversed(self.charges):
                if (
                    charge.request.customer_id == customer_id
                    and charge.request.metadata.get("charge_id") == charge_id
                ):
                    return charge.result
            return None

    def payment_metadata(self, payment_intent_id: str) -> Mapping[str, str] | None:
        with self._lock:
            for charge in self.charges:
                if charge.result.payment_intent_id == payment_intent_id:
                    return dict(charge.request.metadata)
            return None

    def refund(self, request: RefundRequest) -> RefundResult:
        payment_intent_id = request.payment_intent_id
        with self._lock:
            charge = next(
                (c for c in self.charges if c.result.payment_intent_id == payment_intent_id), None
            )
            if charge is None or charge.result.outcome is not PaymentOutcome.SUCCEEDED:
                return RefundResult(PaymentOutcome.FAILED)
            if payment_intent_id not in self.refunds:
                self.refunds[payment_intent_id] = RefundResult(
                    PaymentOutcome.SUCCEEDED, f"re_fake_{next(self._ids)}", request.amount
                )
            return self.refunds[payment_intent_id]

    def find_refund(self, *, payment_intent_id: str) -> RefundResult | None:
        with self._lock:
            return self.refunds.get(payment_intent_id)

    def billing_portal_url(self, *, customer_id: str, return_url: str) -> str:
        return f"https://billing.example.test/session/{customer_id}?return_url={return_url}"

    def create_customer(self, *, account_id: str, idempotency_key: str) -> str:
        with self._lock:
            if idempotency_key in self.customer_keys:
                return self.customer_keys[idempotency_key]
            customer_id = f"cus_fake_{next(self._ids)}"
            self.customers[customer_id] = CustomerState(customer_id, account_id, None)
            self.customer_keys[idempotency_key] = customer_id
            return customer_id

    def setup_session_url(self, request: SetupRequest) -> str:
        with self._lock:
            session_id = f"cs_fake_{next(self._ids)}"
            self.sessions[session_id] = request
            return f"https://checkout.example.test/{session_id}"

    def complete_setup(self, customer_id: str, card: str = "ok") -> tuple[str, str]:
        """A customer adding `card` on the setup page: (setup intent id, payment method id).
        The card is attached; it becomes the default only when asked (the webhook does)."""
        with self._lock:
            method = f"pm_fake_{next(self._ids)}"
            intent = f"seti_fake_{next(self._ids)}"
            self.payment_methods[method] = (customer_id, card)
            self.setups[intent] = SetupResult(intent, "succeeded", customer_id, method)
            return intent, method

    def setup_result(self, setup_intent_id: str) -> SetupResult | None:
        with self._lock:
            return self.setups.get(setup_intent_id)

    def set_default_payment_method(self, *, customer_id: str, payment_method_id: str) -> None:
        with self._lock:
            state = self.customers[customer_id]
            self.customers[customer_id] = replace(state, default_payment_method=payment_method_id)
            self.cards[customer_id] = self.payment_methods.get(payment_method_id, (None, "ok"))[1]

    def detach(self, payment_method_id: str) -> None:
        """The customer (or Stripe's dashboard) removes a card: no longer the default."""
        with self._lock:
            customer_id, _ = self.payment_methods.pop(payment_method_id)
            state = self.customers[customer_id] if customer_id else None
            if state is not None and state.default_payment_method == payment_method_id:
                self.customers[state.customer_id] = replace(state, default_payment_method=None)

    def customer_state(self, customer_id: str) -> CustomerState | None:
        with self._lock:
            return self.customers.get(customer_id)

    @property
    def succeeded(self) -> list[FakeCharge]:
        return [c for c in self.charges if c.result.outcome is PaymentOutcome.SUCCEEDED]

    @property
    def kept(self) -> list[FakeCharge]:
        """Succeeded charges that were not refunded: the money the customer paid in the end."""
        return [c for c in self.succeeded if c.result.payment_intent_id not in self.refunds]
