"""The charges ledger's record: one line per thing paid for, with its Stripe id and status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class ChargeStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    WRITTEN_OFF = "written_off"
    REFUNDED = "refunded"


@dataclass(frozen=True, slots=True)
class ChargeRecord:
    """A ledger line. `action` says what the payment pays for, so that a payment confirmed
    later (a retry, or Stripe's webhook) can still apply it; `applied` says it was."""

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
    action: Mapping[str, Any] = field(default_factory=dict)
    stripe_payment_intent: str | None = None
    failure_message: str | None = None
    # Wall-clock epoch second until which the worker that wrote the line owns the call to the
    # provider; another worker finding the line pending waits instead of charging too.
    lease_until: int = 0
    # A dispute was opened on the payment (the status stays what it was).
    disputed: bool = False
    # Bumped by every write: each write is conditioned on the revision it was decided from.
    revision: int = 0
