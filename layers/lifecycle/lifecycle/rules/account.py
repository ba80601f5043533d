"""The account state machine: cancel, reactivate, and `disabled` once nothing is billable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from lifecycle.rules.calendar import normalize
from lifecycle.rules.catalog import Catalog
from lifecycle.rules.effects import history_entry
from lifecycle.rules.errors import InvalidTransition, QuoteRequired, ValidationFailed
from lifecycle.rules.integration import Command, reactivated
from lifecycle.rules.model import (
    COMMENT_MAX_LENGTH,
    Account,
    AccountDecision,
    AccountStatus,
    Actor,
    BillingState,
    Cancellation,
    ChargeKind,
    ChargeRequest,
    DetailType,
    DomainEvent,
    Integration,
    SuspensionReason,
)
from lifecycle.rules.quotes import account_reactivation_lines
from lifecycle.rules.renewal import suspension


class AccountAction(StrEnum):
    CANCEL = "cancel"
    REACTIVATE = "reactivate"


class AccountOutcome(StrEnum):
    ALREADY_HOLDS = "already_holds"
    SCHEDULE_CANCEL = "schedule_cancel"
    REVOKE_CANCEL = "revoke_cancel"  # free
    RESUME = "resume"  # paid, against a quote


# The rulebook's account action table. A pair not listed is `invalid_transition`.
ACCOUNT_TRANSITIONS: Mapping[tuple[AccountStatus, AccountAction], AccountOutcome] = (
    MappingProxyType(
        {
            (AccountStatus.ACTIVE, AccountAction.CANCEL): AccountOutcome.SCHEDULE_CANCEL,
            (AccountStatus.CANCEL_PENDING, AccountAction.CANCEL): AccountOutcome.ALREADY_HOLDS,
            (AccountStatus.DISABLED, AccountAction.CANCEL): AccountOutcome.ALREADY_HOLDS,
            (AccountStatus.CANCEL_PENDING, AccountAction.REACTIVATE): AccountOutcome.REVOKE_CANCEL,
            (AccountStatus.DISABLED, AccountAction.REACTIVATE): AccountOutcome.RESUME,
        }
    )
)


AccountCommand = Command[AccountAction]


def _account_event(
    account: Account, detail_type: DetailType, at: datetime, **data: object
) -> DomainEvent:
    return DomainEvent(detail_type=detail_type, account_id=account.id, at=at, data=data)


def _bump(account: Account, **changes: object) -> Account:
    return replace(account, version=account.version + 1, **changes)  # type: ignore[arg-type]


def decide_account(
    account: Account,
    command: AccountCommand,
    now: datetime,
    *,
    integrations: Sequence[Integration],
    catalog: Catalog,
) -> AccountDecision:
    """Decide an account action given every integration of the account. Raises when refused."""
    now = normalize(now)
    try:
        outcome = ACCOUNT_TRANSITIONS[(account.status, command.action)]
    except KeyError:
        raise InvalidTransition(
            f"Cannot {command.action.value} an account that is {account.status.value}.",
            current_status=account.status.value,
        ) from None
    if outcome is AccountOutcome.ALREADY_HOLDS:
        return AccountDecision(before=account, after=account, noop=True)
    if outcome is AccountOutcome.SCHEDULE_CANCEL:
        return _schedule_cancel(account, command, now, integrations)
    if outcome is AccountOutcome.REVOKE_CANCEL:
        after = _bump(
            account, status=AccountStatus.ACTIVE, cancellation=None, status_changed_at=now
        )
        return AccountDecision(
            before=account,
            after=after,
            events=(_account_event(after, DetailType.ACCOUNT_REACTIVATED, now, amount=0),),
            activity=(
                history_entry(DetailType.ACCOUNT_REACTIVATED, command.actor, now, {"amount": 0}),
            ),
        )
    return _resume(account, command, now, integrations, catalog)


def _schedule_cancel(
    account: Account, command: AccountCommand, now: datetime, integrations: Sequence[Integration]
) -> AccountDecision:
    if command.reason is None:
        raise ValidationFailed("A cancellation needs a reason.", field="reason")
    comment = (command.comment or "").strip() or None
    if comment is not None and len(comment) > COMMENT_MAX_LENGTH:
        raise ValidationFailed(
            f"The comment is limited to {COMMENT_MAX_LENGTH} characters.", field="comment"
        )
    cancellation = Cancellation(reason=command.reason, comment=comment, requested_at=now)
    # A past-due integration has no paid period left: suspended at once, its retries stopped.
    stopped = tuple(
        suspension(i, now, SuspensionReason.ACCOUNT_CANCELLED)
        for i in integrations
        if i.billable and i.billing_state is BillingState.PAST_DUE
    )
    billable = sum(1 for i in integrations if i.billable) - len(stopped)
    status = AccountStatus.CANCEL_PENDING if billable else AccountStatus.DISABLED
    after = _bump(account, status=status, cancellation=cancellation, status_changed_at=now)
    events = [
        _account_event(after, DetailType.ACCOUNT_CANCEL_SCHEDULED, now, reason=command.reason.value)
    ]
    activity = [
        history_entry(
            DetailType.ACCOUNT_CANCEL_SCHEDULED,
            command.actor,
            now,
            {"reason": command.reason.value, "comment": comment},
        )
    ]
    if status is AccountStatus.DISABLED:
        events.append(_account_event(after, DetailType.ACCOUNT_DISABLED, now))
        activity.append(history_entry(DetailType.ACCOUNT_DISABLED, command.actor, now))
    return AccountDecision(
        before=account,
        after=after,
        integrations=stopped,
        events=tuple(events),
        activity=tuple(activity),
    )


def _resume(
    account: Account,
    command: AccountCommand,
    now: datetime,
    integrations: Sequence[Integration],
    catalog: Catalog,
) -> AccountDecision:
    lines = account_reactivation_lines(integrations, now, catalog)
    total = sum(line.amount for line in lines)
    if total > 0 and command.quote is None:
        raise QuoteRequired(
            "Reactivating this account charges the coming month up front: get its quote and"
            " present the quote id.",
            amount=total,
        )
    resumed_ids = {line.integration_id for line in lines}
    # Each line's integration comes back as the paid reactivation of one integration would;
    # the account's single charge pays for all of them.
    amounts = {line.integration_id: line.amount for line in lines}
    decisions = tuple(
        reactivated(i, now, command.actor, amounts[i.id])
        for i in integrations
        if i.id in resumed_ids
    )
    after = _bump(account, status=AccountStatus.ACTIVE, cancellation=None, status_changed_at=now)
    charge = None
    if total > 0 and command.quote is not None:
        charge = ChargeRequest(
            kind=ChargeKind.QUOTE,
            amount=command.quote.amount,
            currency=catalog.currency,
            description=(
                f"Account reactivation: {len(lines)} integration(s), the coming month up front"
            ),
            integration_ids=tuple(line.integration_id for line in lines),
            idempotency_key=f"quote:{command.quote.id}",
        )
    amount = charge.amount if charge else 0
    return AccountDecision(
        before=account,
        after=after,
        integrations=decisions,
        charge=charge,
        events=(_account_event(after, DetailType.ACCOUNT_REACTIVATED, now, amount=amount),),
        activity=(
            history_entry(
                DetailType.ACCOUNT_REACTIVATED,
                command.actor,
                now,
                {"amount": amount, "integrations": sorted(resumed_ids)},
            ),
        ),
    )


def settle(
    account: Account, remaining_billable: int, now: datetime, actor: Actor
) -> AccountDecision:
    """After an integration of a cancelling account stops being billable: the account becomes
    `disabled` once none is left. Otherwise its version is still bumped, so that two
    integrations stopping at once serialise on the account and the last one sees zero."""
    now = normalize(now)
    if account.status is not AccountStatus.CANCEL_PENDING:
        return AccountDecision(before=account, after=account, noop=True)
    if remaining_billable > 0:
        return AccountDecision(before=account, after=_bump(account))
    after = _bump(account, status=AccountStatus.DISABLED, status_changed_at=now)
    return AccountDecision(
        before=account,
        after=after,
        events=(_account_event(after, DetailType.ACCOUNT_DISABLED, now),),
        activity=(history_entry(DetailType.ACCOUNT_DISABLED, actor, now),),
    )


def reopen_for_create(account: Account, now: datetime, actor: Actor) -> AccountDecision:
    """Creating an integration on a disabled account makes it active again."""
    now = normalize(now)
    if account.status is not AccountStatus.DISABLED:
        return AccountDecision(before=account, after=account, noop=True)
    after = _bump(account, status=AccountStatus.ACTIVE, cancellation=None, status_changed_at=now)
    return AccountDecision(
        before=account,
        after=after,
        events=(_account_event(after, DetailType.ACCOUNT_REACTIVATED, now, amount=0),),
        activity=(history_entry(DetailType.ACCOUNT_REACTIVATED, actor, now, {"via": "create"}),),
    )
