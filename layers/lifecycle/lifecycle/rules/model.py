"""The lifecycle's state and effects: accounts, integrations, charges, events, decisions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from lifecycle.rules.calendar import format_instant


class Status(StrEnum):
    ACTIVE = "active"
    FREEZE_PENDING = "freeze_pending"
    FROZEN = "frozen"
    CANCEL_PENDING = "cancel_pending"
    SUSPENDED = "suspended"


class BillingState(StrEnum):
    OK = "ok"
    PAST_DUE = "past_due"


class AccountStatus(StrEnum):
    ACTIVE = "active"
    CANCEL_PENDING = "cancel_pending"
    DISABLED = "disabled"


class SuspensionReason(StrEnum):
    ACCOUNT_CANCELLED = "account_cancelled"
    NON_PAYMENT = "non_payment"


class CancelReason(StrEnum):
    TOO_EXPENSIVE = "too_expensive"
    MISSING_FEATURES = "missing_features"
    SWITCHED_PROVIDER = "switched_provider"
    NO_LONGER_NEEDED = "no_longer_needed"
    TECHNICAL_ISSUES = "technical_issues"
    OTHER = "other"


class ChargeKind(StrEnum):
    CREATE = "create"
    RENEWAL = "renewal"
    QUOTE = "quote"


class DetailType(StrEnum):
    """Domain event detail-types published on the `integrations` bus (api.md)."""

    INTEGRATION_CREATED = "IntegrationCreated"
    FREEZE_SCHEDULED = "FreezeScheduled"
    INTEGRATION_FROZEN = "IntegrationFrozen"
    INTEGRATION_REACTIVATED = "IntegrationReactivated"
    CANCEL_SCHEDULED = "CancelScheduled"
    CANCEL_REVOKED = "CancelRevoked"
    INTEGRATION_DELETED = "IntegrationDeleted"
    INTEGRATION_RENEWED = "IntegrationRenewed"
    INTEGRATION_SUSPENDED = "IntegrationSuspended"
    PAYMENT_FAILED = "PaymentFailed"
    ACCOUNT_CANCEL_SCHEDULED = "AccountCancelScheduled"
    ACCOUNT_DISABLED = "AccountDisabled"
    ACCOUNT_REACTIVATED = "AccountReactivated"
    CHARGE_REFUNDED = "ChargeRefunded"
    ACCOUNT_CREATED = "AccountCreated"
    PAYMENT_METHOD_UPDATED = "PaymentMethodUpdated"
    USER_INVITED = "UserInvited"
    CHARGE_SUCCEEDED = "ChargeSucceeded"
    DELETION_REMINDER = "DeletionReminder"


# Statuses that the renewal bills (the account's "billable" integrations).
BILLABLE_STATUSES = frozenset({Status.ACTIVE, Status.FREEZE_PENDING, Status.FROZEN})
COMMENT_MAX_LENGTH = 1000
# Dunning: retries this long after the unpaid period's start; unpaid after the last -> suspended.
DUNNING_RETRY_OFFSETS = (timedelta(days=1), timedelta(days=3), timedelta(days=7))
GRACE_PERIOD = DUNNING_RETRY_OFFSETS[-1]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it: a dashboard user (`user:<sub>`), the scheduler, or Stripe."""

    kind: str
    id: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}" if self.id else self.kind


SYSTEM = Actor("system")
STRIPE = Actor("stripe")


def user(sub: str) -> Actor:
    return Actor("user", sub)


@dataclass(frozen=True, slots=True)
class Cancellation:
    reason: CancelReason
    comment: str | None
    requested_at: datetime


@dataclass(frozen=True, slots=True)
class Integration:
    """One paid connection. `anchor` and `period_index` fix the anchored billing calendar:
    `current_period_start = add_month(anchor, period_index)` and the end is the next month."""

    id: str
    account_id: str
    name: str
    supplier: str
    channel: str
    plan: str
    status: Status
    current_period_start: datetime
    current_period_end: datetime
    anchor: datetime
    created_at: datetime
    period_index: int = 0
    billing_state: BillingState = BillingState.OK
    # Renewal attempts made for the unpaid period starting at `current_period_end` (past_due).
    dunning_attempts: int = 0
    next_attempt_at: datetime | None = None
    cancellation: Cancellation | None = None
    cancelled_from: Status | None = None
    suspension_reason: SuspensionReason | None = None
    suspended_from: Status | None = None
    suspended_at: datetime | None = None
    currency: str = "usd"
    version: int = 0

    @property
    def sync_enabled(self) -> bool:
        """Whether the sync engine should be syncing this integration's feed."""
        if self.status in (Status.ACTIVE, Status.FREEZE_PENDING):
            return True
        if self.status is Status.CANCEL_PENDING:
            return self.cancelled_from is not Status.FROZEN
        return False

    @property
    def billable(self) -> bool:
        return self.status in BILLABLE_STATUSES


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    status: AccountStatus
    created_at: datetime
    currency: str = "usd"
    stripe_customer_id: str | None = None
    has_payment_method: bool = False
    cancellation: Cancellation | None = None
    status_changed_at: datetime | None = None
    version: int = 0
    # The Stripe customer's default payment method, as last confirmed by Stripe: the account
    # `has_payment_method` exactly while there is one (lifecycle.md, Accounts and users).
    payment_method_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    """A charge the use case must collect before it applies the decision that carries it."""

    kind: ChargeKind
    amount: int
    currency: str
    description: str
    integration_ids: tuple[str, ...]
    idempotency_key: str
    period_start: datetime | None = None
    period_end: datetime | None = None
    attempt: int = 1
    # What the ledger keys the charge by: one ledger line per thing paid for, whatever the
    # number of attempts (a renewal's retries share it; each attempt has its own Stripe key).
    ledger_key: str = ""

    @property
    def ledger(self) -> str:
        return self.ledger_key or self.idempotency_key


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """One published fact (transactional outbox). `sync_enabled` is what the sync engine acts on."""

    detail_type: DetailType
    account_id: str
    at: datetime
    integration_id: str | None = None
    sync_enabled: bool | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One line of an integration's history (or, with no integration, the account's activity)."""

    at: datetime
    type: str
    actor: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Tombstone:
    """What stays of a deleted integration: one line in the account's activity."""

    integration_id: str
    name: str
    cancelled_at: datetime | None
    deleted_at: datetime
    reason: str | None


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one action on one integration.

    `before` is the state it was decided from (None for a create); the store applies `after`
    conditionally on `before.version`. `after` is None when the integration is deleted.
    A `charge` must be collected before the decision is applied; a no-op changes nothing.
    """

    before: Integration | None
    after: Integration | None
    events: tuple[DomainEvent, ...] = ()
    history: tuple[HistoryEntry, ...] = ()
    charge: ChargeRequest | None = None
    tombstone: Tombstone | None = None
    noop: bool = False
    # The ledger key of an unpaid renewal charge this change writes off (its retries stop).
    writes_off: str | None = None

    @property
    def deleted(self) -> bool:
        return self.after is None


@dataclass(frozen=True, slots=True)
class AccountDecision:
    """The outcome of an account action: the account, the integrations it changes, one charge."""

    before: Account
    after: Account
    integrations: tuple[Decision, ...] = ()
    events: tuple[DomainEvent, ...] = ()
    activity: tuple[HistoryEntry, ...] = ()
    charge: ChargeRequest | None = None
    noop: bool = False


def renewal_fee(status: Status, monthly_fee: int, frozen_fee: int) -> int | None:
    """What the renewal of an integration in `status` charges; None when it charges nothing."""
    if status is Status.ACTIVE:
        return monthly_fee
    if status in (Status.FREEZE_PENDING, Status.FROZEN):
        return frozen_fee
    return None


def renewal_ledger_key(integration_id: str, period_start: datetime) -> str:
    """The ledger line of a renewal: one per integration and period, whatever the attempts."""
    return f"renewal:{integration_id}:{format_instant(period_start)}"


def unpaid_renewal(integration: Integration) -> str | None:
    """The ledger key of the renewal charge being retried while the integration is past due."""
    if integration.billing_state is not BillingState.PAST_DUE:
        return None
    return renewal_ledger_key(integration.id, integration.current_period_end)
