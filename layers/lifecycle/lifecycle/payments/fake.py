"""An in-memory payments provider that records every charge (unit tests, no network)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from lifecycle.payments.port import PaymentOutcome, PaymentResult, RefundResult


@dataclass
class FakeCharge:
    customer_id: str
    amount: int
    currency: str
    description: str
    idempotency_key: str
    metadata: dict[str, str]
    result: PaymentResult


@dataclass
class FakePayments:
    """Cards per customer: `ok`, `declined` or `unavailable` (answers PENDING, charges nothing)."""

    cards: dict[str, str] = field(default_factory=dict)
    charges: list[FakeCharge] = field(default_factory=list)
    # payment intent id -> the refund made on it
    refunds: dict[str, RefundResult] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def charge(
        self,
        *,
        customer_id: str,
        amount: int,
        currency: str,
        description: str,
        idempotency_key: str,
        metadata: Mapping[str, str],
    ) -> PaymentResult:
        with self._lock:
            card = self.cards.get(customer_id, "ok")
            if card == "unavailable":
                return PaymentResult(PaymentOutcome.PENDING)
            intent = f"pi_fake_{next(self._ids)}"
            if card == "declined":
                result = PaymentResult(
                    PaymentOutcome.FAILED, intent, "Your card was declined.", "card_declined"
                )
            else:
                result = PaymentResult(PaymentOutcome.SUCCEEDED, intent)
            self.charges.append(
                FakeCharge(
                    customer_id,
                    amount,
                    currency,
                    description,
                    idempotency_key,
                    dict(metadata),
                    result,
                )
            )
            return result

    def find(self, *, customer_id: str, charge_id: str) -> PaymentResult | None:
        with self._lock:
            for charge in reversed(self.charges):
                if (
                    charge.customer_id == customer_id
                    and charge.metadata.get("charge_id") == charge_id
                ):
                    return charge.result
            return None

    def payment_metadata(self, payment_intent_id: str) -> Mapping[str, str] | None:
        with self._lock:
            for charge in self.charges:
                if charge.result.payment_intent_id == payment_intent_id:
                    return dict(charge.metadata)
            return None

    def refund(
        self,
        *,
        payment_intent_id: str,
        amount: int,
        idempotency_key: str,
        metadata: Mapping[str, str],
    ) -> RefundResult:
        with self._lock:
            charge = next(
                (c for c in self.charges if c.result.payment_intent_id == payment_intent_id), None
            )
            if charge is None or charge.result.outcome is not PaymentOutcome.SUCCEEDED:
                return RefundResult(PaymentOutcome.FAILED)
            if payment_intent_id not in self.refunds:
                self.refunds[payment_intent_id] = RefundResult(
                    PaymentOutcome.SUCCEEDED, f"re_fake_{next(self._ids)}", amount
                )
            return self.refunds[payment_intent_id]

    def find_refund(self, *, payment_intent_id: str) -> RefundResult | None:
        with self._lock:
            return self.refunds.get(payment_intent_id)

    def billing_portal_url(self, *, customer_id: str, return_url: str) -> str:
        return f"https://billing.example.test/session/{customer_id}?return_url={return_url}"

    @property
    def succeeded(self) -> list[FakeCharge]:
        return [c for c in self.charges if c.result.outcome is PaymentOutcome.SUCCEEDED]

    @property
    def kept(self) -> list[FakeCharge]:
        """Succeeded charges that were not refunded: the money the customer paid in the end."""
        return [c for c in self.succeeded if c.result.payment_intent_id not in self.refunds]
