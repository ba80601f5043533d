"""The charges ledger: one line per thing bought, with its Stripe id, status and what it paid for.

A line moves only forward along one order of precedence, so the final state depends on the set
of facts learned (the request's answer, Stripe's events, the reconciler's look-ups), not on
their order:

    pending -> failed -> succeeded -> refunded        (written_off ranks with failed;
                                                        disputed is a flag beside the status)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from lifecycle.rules.paid import PaidAction


class ChargeStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    WRITTEN_OFF = "written_off"
    REFUNDED = "refunded"


RANK = {
    ChargeStatus.PENDING: 0,
    ChargeStatus.FAILED: 1,
    ChargeStatus.WRITTEN_OFF: 1,
    ChargeStatus.SUCCEEDED: 2,
    ChargeStatus.REFUNDED: 3,
}

# Why a line was refunded: its paid action could no longer be applied, or Stripe reports a
# refund made there (the dashboard, support).
NOT_APPLIED = "not_applied"
REFUNDED_AT_STRIPE = "refunded_at_stripe"


@dataclass(frozen=True, slots=True)
class ReceiptItem:
    """One line of a receipt: what one integration got for its part of the charge."""

    integration_id: str
    name: str
    plan: str
    fee: str  # what is paid: "monthly fee", "frozen fee", "unfreeze: monthly less frozen fee"
    period_start: datetime
    period_end: datetime
    amount: int
    # How a partial amount was reached (None for a full fee).
    proration: str | None = None


def receipt_number(account_id: str, sequence: int) -> str:
    """`R-{account short id}-{n}`: the account id without its prefix, its last 8 characters
    upper-cased, and the account's receipt count (zero-padded so numbers sort as they grow)."""
    short = account_id.removeprefix("acc_")[-8:].upper()
    return f"R-{short}-{sequence:04d}"


@dataclass(frozen=True, slots=True)
class ChargeRecord:
    """A ledger line. `action` says what the payment pays for, so that whoever learns of its
    success (the request, Stripe's webhook, the reconciler) can apply it; `applied` says it was.

    `request_ref` names the request that may drive the line (a quote id; the ledger key for a
    renewal or a create): another request for the same change is refused before Stripe."""

    id: str
    account_id: str
    ledger_key: str
    kind: str
    amount: int
    currency: str
    description: str
    integration_ids: tuple[str, ...]
    status: ChargeStatus
    created_at: datetime
    updated_at: datetime
    attempt: int = 1
    applied: bool = False
    action: PaidAction | None = None
    request_ref: str = ""
    customer_id: str | None = None
    stripe_payment_intent: str | None = None
    failure_message: str | None = None
    # Wall-clock epoch second until which the worker that wrote the line owns the call to the
    # provider (a charge, or the refund once `refund_reason` is set); another worker finding
    # the line waits instead of calling too.
    lease_until: int = 0
    # A dispute was opened on the payment (the status stays what it was).
    disputed: bool = False
    # Set when a refund is decided (the status stays succeeded until Stripe confirms it).
    refund_reason: str | None = None
    refund_id: str | None = None
    # The refunded line this one buys the same change again for (its guard moved here).
    supersedes: str | None = None
    # The line that bought the same change again after this one was refunded: this one no
    # longer holds the thing bought (it is kept, under its own id, for the ledger).
    superseded_by: str | None = None
    # Set once, in the transaction that makes the line succeeded and applied (never before,
    # never again): the account's next receipt number, when it succeeded, what each item got.
    receipt_number: str | None = None
    succeeded_at: datetime | None = None
    receipt_items: tuple[ReceiptItem, ...] = ()
    # Bumped by every write: each write is conditioned on the revision it was decided from.
    revision: int = 0

    @property
    def unsettled(self) -> bool:
        """Money may have been taken without its action applied or refunded yet: the sweep's
        reconciler looks at every such line."""
        return self.status is ChargeStatus.PENDING or (
            self.status is ChargeStatus.SUCCEEDED and not self.applied
        )
