"""What a payment pays for, as one typed value, and whether it can still be applied.

A ledger line carries a `PaidAction`. Whoever learns that its charge succeeded (the request
that made it, Stripe's webhook, the sweep's reconciler) asks `apply_paid` what to do with the
state as it is *now*: the decisions to commit with the line, or why it no longer applies (then
the charge is refunded). The thing bought is a change of one subject *from the state it is in*:
`ledger_key` names it, so two quotes for the same change share one ledger line and only one of
them can ever reach Stripe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from lifecycle.rules.account import AccountAction, AccountCommand, decide_account, reopen_for_create
from lifecycle.rules.calendar import format_instant, normalize
from lifecycle.rules.catalog import Catalog
from lifecycle.rules.errors import AccountNotActive, DomainError, QuoteStale
from lifecycle.rules.integration import NewIntegration, QuoteRef, create, reactivated
from lifecycle.rules.model import (
    Account,
    AccountDecision,
    AccountStatus,
    Actor,
    Decision,
    DomainEvent,
    Integration,
    Status,
    renewal_ledger_key,
)
from lifecycle.rules.quotes import account_reactivation_lines
from lifecycle.rules.renewal import renewed


@dataclass(frozen=True, slots=True)
class CreatePaid:
    """A new integration, its first month paid up front."""

    integration_id: str
    name: str
    supplier: str
    channel: str
    plan: str


@dataclass(frozen=True, slots=True)
class UnfreezePaid:
    """A frozen integration active again, for the rest of the frozen period starting at
    `period_start` (it can be unfrozen once per period: a freeze takes effect at a renewal)."""

    integration_id: str
    period_start: datetime
    quote_id: str


@dataclass(frozen=True, slots=True)
class ReinstatePaid:
    """A suspended integration back with a new period; `suspended_at` names the suspension."""

    integration_id: str
    suspended_at: datetime
    quote_id: str


@dataclass(frozen=True, slots=True)
class AccountReactivationPaid:
    """A disabled account active again with these suspended integrations; `disabled_at` names
    the time it became disabled."""

    disabled_at: datetime | None
    integration_ids: tuple[str, ...]
    quote_id: str


@dataclass(frozen=True, slots=True)
class RenewalPaid:
    """The period of an integration that starts at `period_start` (its current period's end)."""

    integration_id: str
    period_start: datetime


PaidAction = CreatePaid | UnfreezePaid | ReinstatePaid | AccountReactivationPaid | RenewalPaid


def ledger_key(account_id: str, action: PaidAction) -> str:
    """The thing bought: one ledger line (and one guard) per change of a subject from the state
    it is in, whatever the number of quotes or attempts."""
    match action:
        case CreatePaid(integration_id=integration_id):
            return f"create:{integration_id}"
        case UnfreezePaid(integration_id=integration_id, period_start=start):
            return f"unfreeze:{integration_id}:{format_instant(start)}"
        case ReinstatePaid(integration_id=integration_id, suspended_at=at):
            return f"reinstate:{integration_id}:{format_instant(at)}"
        case AccountReactivationPaid(disabled_at=at):
            since = format_instant(at) if at else "unknown"
            return f"account-reactivation:{account_id}:{since}"
        case RenewalPaid(integration_id=integration_id, period_start=start):
            return renewal_ledger_key(integration_id, start)


def subject_ids(action: PaidAction) -> tuple[str, ...]:
    """The integrations a paid action changes."""
    match action:
        case AccountReactivationPaid(integration_ids=ids):
            return ids
        case CreatePaid() | UnfreezePaid() | ReinstatePaid() | RenewalPaid():
            return (action.integration_id,)


def quote_of(action: PaidAction) -> str | None:
    """The quote a paid action was bought against (None for a create or a renewal)."""
    match action:
        case (
            UnfreezePaid(quote_id=q)
            | ReinstatePaid(quote_id=q)
            | AccountReactivationPaid(quote_id=q)
        ):
            return q
        case CreatePaid() | RenewalPaid():
            return None


@dataclass(frozen=True, slots=True)
class Applied:
    """What to commit, with the ledger line marked applied, for a paid action that applies."""

    integration: Decision | None = None
    account: AccountDecision | None = None

    @property
    def events(self) -> tuple[DomainEvent, ...]:
        found: list[DomainEvent] = []
        if self.integration is not None:
            found += self.integration.events
        if self.account is not None:
            found += self.account.events
            for decision in self.account.integrations:
                found += decision.events
        return tuple(found)


@dataclass(frozen=True, slots=True)
class NotApplicable:
    """Why a paid action no longer applies; the charge is refunded in full."""

    error: DomainError


def apply_paid(
    action: PaidAction,
    *,
    account: Account,
    integrations: Mapping[str, Integration],
    amount: int,
    now: datetime,
    actor: Actor,
    catalog: Catalog,
) -> Applied | NotApplicable:
    """Apply a paid action to the state as it is now, or say why it no longer applies.

    `integrations` holds the current state of the integrations the action names (all of the
    account's for an account reactivation); a missing one is deleted (or not created yet).
    `amount` is what was paid.
    """
    now = normalize(now)
    match action:
        case CreatePaid():
            return _create(action, account, integrations, now, actor, catalog)
        case UnfreezePaid() | ReinstatePaid():
            return _reactivation(
                action, account, integrations.get(action.integration_id), amount, now, actor
            )
        case AccountReactivationPaid():
            return _account(action, account, integrations, amount, now, actor, catalog)
        case RenewalPaid():
            return _renewal(
                action, account, integrations.get(action.integration_id), amount, now, catalog
            )


_STALE = (
    "What this payment was for changed before it could be applied (another request got there"
    " first)."
)


def _stale(detail: str = _STALE, **extra: object) -> NotApplicable:
    return NotApplicable(QuoteStale(detail, **extra))


def _create(
    action: CreatePaid,
    account: Account,
    integrations: Mapping[str, Integration],
    now: datetime,
    actor: Actor,
    catalog: Catalog,
) -> Applied | NotApplicable:
    if action.integration_id in integrations:
        return _stale("This integration exists already.")
    if account.status is AccountStatus.CANCEL_PENDING:
        return NotApplicable(
            AccountNotActive(
                "This account's subscription was cancelled while the payment was made.",
                account_status=account.status.value,
            )
        )
    request = NewIntegration(action.name, action.supplier, action.channel, action.plan)
    decision = create(action.integration_id, account, request, now, actor, catalog)
    return Applied(
        integration=replace(decision, charge=None), account=reopen_for_create(account, now, actor)
    )


def _account_refusal(account: Account) -> NotApplicable | None:
    if account.status is AccountStatus.ACTIVE:
        return None
    return NotApplicable(
        AccountNotActive(
            f"This account became {account.status.value} while the payment was made.",
            account_status=account.status.value,
        )
    )


def _still_as_bought(action: UnfreezePaid | ReinstatePaid, integration: Integration) -> bool:
    """The integration is still in the state the reactivation was bought from."""
    match action:
        case UnfreezePaid():
            return (
                integration.status is Status.FROZEN
                and integration.current_period_start == action.period_start
            )
        case ReinstatePaid():
            return (
                integration.status is Status.SUSPENDED
                and integration.suspended_at == action.suspended_at
            )


def _reactivation(
    action: UnfreezePaid | ReinstatePaid,
    account: Account,
    integration: Integration | None,
    amount: int,
    now: datetime,
    actor: Actor,
) -> Applied | NotApplicable:
    """A paid unfreeze or reinstatement, applied if the integration is still in the state it
    was bought from and the account is active."""
    if integration is None or not _still_as_bought(action, integration):
        return _stale(current_status=integration.status.value if integration else "deleted")
    refused = _account_refusal(account)
    if refused is not None:
        return refused
    return Applied(integration=reactivated(integration, now, actor, amount))


def _account(
    action: AccountReactivationPaid,
    account: Account,
    integrations: Mapping[str, Integration],
    amount: int,
    now: datetime,
    actor: Actor,
    catalog: Catalog,
) -> Applied | NotApplicable:
    if account.status is not AccountStatus.DISABLED or account.status_changed_at != (
        action.disabled_at
    ):
        return _stale(account_status=account.status.value)
    lines = account_reactivation_lines(integrations.values(), now, catalog)
    if tuple(sorted(line.integration_id for line in lines)) != tuple(
        sorted(action.integration_ids)
    ):
        return _stale("The integrations this payment was for changed before it could be applied.")
    decision = decide_account(
        account,
        AccountCommand(AccountAction.REACTIVATE, actor, quote=QuoteRef(action.quote_id, amount)),
        now,
        integrations=list(integrations.values()),
        catalog=catalog,
    )
    return Applied(account=replace(decision, charge=None))


def _renewal(
    action: RenewalPaid,
    account: Account,
    integration: Integration | None,
    amount: int,
    now: datetime,
    catalog: Catalog,
) -> Applied | NotApplicable:
    if (
        integration is None
        or not integration.billable
        or integration.current_period_end != action.period_start
    ):
        return _stale(current_status=integration.status.value if integration else "deleted")
    refused = _account_refusal(account)
    if refused is not None:
        return refused
    decision, fee = renewed(integration, now, catalog)
    # The price depends on the status at the renewal (a freeze or an unfreeze may land while
    # the charge is made): a charge for another price is refunded and the next sweep charges
    # the right one.
    if fee != amount:
        return _stale("The renewal's price changed while it was being charged.")
    return Applied(integration=decision)
