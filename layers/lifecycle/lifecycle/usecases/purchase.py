"""What a charge is about and what became of it: `Purchase`, `Collected`, `Settlement`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lifecycle.rules.errors import (
    DomainError,
    QuoteStale,
)
from lifecycle.rules.ledger import ChargeRecord, ChargeStatus
from lifecycle.rules.model import (
    ChargeRequest,
)
from lifecycle.rules.money import format_amount
from lifecycle.rules.paid import (
    Applied,
    PaidAction,
)
from lifecycle.store.repository import Expect

ATTEMPTS = 5
# Charges of one account racing for its next receipt number: each lost race costs a re-read,
# never an attempt (20 concurrent charges of one account settle without a 409).
RECEIPT_RACES = 50


@dataclass(frozen=True, slots=True)
class Purchase:
    """What a request buys: the charge, the paid action, the request that may drive its ledger
    line (a quote id, or the ledger key when only retries share it), and what the subject must
    still be when the line is written (the quote's versions)."""

    charge: ChargeRequest
    action: PaidAction
    request_ref: str
    expect: tuple[Expect, ...] = ()


@dataclass(frozen=True, slots=True)
class Collected:
    """A charge that succeeded: `line` as stored, `payment_intent` the succeeded one."""

    line: ChargeRecord
    payment_intent: str | None

    @property
    def already_applied(self) -> bool:
        return self.line.status is ChargeStatus.SUCCEEDED and self.line.applied


class Outcome(StrEnum):
    APPLIED = "applied"  # by this call
    ALREADY_APPLIED = "already_applied"  # by another (a retry, the webhook, the reconciler)
    REFUNDED = "refunded"  # it no longer applied: refunded in full
    REFUND_PENDING = "refund_pending"  # refunded, not yet confirmed (the reconciler finishes)


@dataclass(frozen=True, slots=True)
class Settlement:
    outcome: Outcome
    line: ChargeRecord
    applied: Applied | None = None
    # Why the paid action did not apply (refunded outcomes).
    reason: DomainError | None = None

    def raise_if_refunded(self) -> None:
        """The caller's error when its payment was refunded: why, and that it was refunded."""
        if self.outcome not in (Outcome.REFUNDED, Outcome.REFUND_PENDING):
            return
        reason = self.reason or QuoteStale("What this payment was for changed meanwhile.")
        amount = format_amount(self.line.amount, self.line.currency)
        done = "was" if self.outcome is Outcome.REFUNDED else "is being"
        raise type(reason)(
            f"{reason.detail} Your payment of {amount} {done} refunded in full; nothing was"
            " changed.",
            **reason.extra,
            refunded=True,
            charge_id=self.line.id,
        )
