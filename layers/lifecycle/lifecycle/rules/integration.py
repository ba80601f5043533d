"""The integration state machine: an explicit transition table and the decisions it yields."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from lifecycle.rules.calendar import add_month, format_instant, normalize
from lifecycle.rules.catalog import Catalog
from lifecycle.rules.effects import history_entry, integration_event, next_version, recorded_change
from lifecycle.rules.errors import (
    AccountNotActive,
    InvalidTransition,
    QuoteRequired,
    ValidationFailed,
)
from lifecycle.rules.model import (
    BILLABLE_STATUSES,
    COMMENT_MAX_LENGTH,
    Account,
    AccountStatus,
    Actor,
    BillingState,
    Cancellation,
    CancelReason,
    ChargeKind,
    ChargeRequest,
    Decision,
    DetailType,
    Integration,
    Status,
    Tombstone,
    unpaid_renewal,
)
from lifecycle.rules.quotes import reactivation_line


class Action(StrEnum):
    FREEZE = "freeze"
    CANCEL = "cancel"
    REACTIVATE = "reactivate"
    UPDATE_SETTINGS = "update_settings"


class Outcome(StrEnum):
    """What an allowed (status, action) pair does."""

    ALREADY_HOLDS = "already_holds"  # no-op success
    SCHEDULE_FREEZE = "schedule_freeze"
    SCHEDULE_CANCEL = "schedule_cancel"
    DELETE_NOW = "delete_now"
    REVOKE_CANCEL = "revoke_cancel"
    REVOKE_FREEZE = "revoke_freeze"
    UNFREEZE = "unfreeze"  # paid, prorated
    RESUME = "resume"  # paid, new period
    REPLACE_SETTINGS = "replace_settings"


# The rulebook's "Actions on one integration" table. A pair not listed is `invalid_transition`.
TRANSITIONS: Mapping[tuple[Status, Action], Outcome] = MappingProxyType(
    {
        (Status.ACTIVE, Action.FREEZE): Outcome.SCHEDULE_FREEZE,
        (Status.FREEZE_PENDING, Action.FREEZE): Outcome.ALREADY_HOLDS,
        # Frozen already: what the freeze asks for holds (a bulk freeze over a mixed selection).
        (Status.FROZEN, Action.FREEZE): Outcome.ALREADY_HOLDS,
        (Status.ACTIVE, Action.CANCEL): Outcome.SCHEDULE_CANCEL,
        (Status.FREEZE_PENDING, Action.CANCEL): Outcome.SCHEDULE_CANCEL,
        (Status.FROZEN, Action.CANCEL): Outcome.SCHEDULE_CANCEL,
        (Status.CANCEL_PENDING, Action.CANCEL): Outcome.ALREADY_HOLDS,
        (Status.SUSPENDED, Action.CANCEL): Outcome.DELETE_NOW,
        (Status.CANCEL_PENDING, Action.REACTIVATE): Outcome.REVOKE_CANCEL,
        (Status.FREEZE_PENDING, Action.REACTIVATE): Outcome.REVOKE_FREEZE,
        (Status.FROZEN, Action.REACTIVATE): Outcome.UNFREEZE,
        (Status.SUSPENDED, Action.REACTIVATE): Outcome.RESUME,
        **{(status, Action.UPDATE_SETTINGS): Outcome.REPLACE_SETTINGS for status in Status},
    }
)

PAID_OUTCOMES = frozenset({Outcome.UNFREEZE, Outcome.RESUME})


@dataclass(frozen=True, slots=True)
class QuoteRef:
    """The quote a paid reactivation is paid against (already checked by the use case)."""

    id: str
    amount: int


@dataclass(frozen=True, slots=True)
class Command[A: StrEnum]:
    """One user action: on one integration (`Action`), or on an account (`AccountCommand`)."""

    action: A
    actor: Actor
    reason: CancelReason | None = None
    comment: str | None = None
    quote: QuoteRef | None = None


def outcome_of(integration: Integration, action: Action) -> Outcome:
    """What `action` does to `integration` by the tables (the past-due rows first)."""
    past_due = _past_due(integration, action)
    if past_due is not None:
        return past_due
    try:
        return TRANSITIONS[(integration.status, action)]
    except KeyError:
        raise InvalidTransition(
            _refusal(integration.status, action),
            current_status=integration.status.value,
        ) from None


def _refusal(status: Status, action: Action) -> str:
    allowed = sorted(s.value for (s, a) in TRANSITIONS if a is action)
    return (
        f"Cannot {action.value.replace('_', ' ')} an integration that is {status.value};"
        f" this is possible from: {', '.join(allowed)}."
    )


def decide(
    integration: Integration,
    command: Command[Action],
    now: datetime,
    *,
    account_status: AccountStatus,
    catalog: Catalog,
) -> Decision:
    """Decide what `command` does to `integration` at `now`. Raises a DomainError when refused."""
    now = normalize(now)
    outcome = outcome_of(integration, command.action)
    if outcome is Outcome.ALREADY_HOLDS:
        return Decision(before=integration, after=integration, noop=True)
    if outcome in PAID_OUTCOMES or outcome is Outcome.REVOKE_CANCEL:
        _require_account_for_reactivation(account_status, outcome)
    return _HANDLERS[outcome](integration, command, now, catalog)


def _past_due(integration: Integration, action: Action) -> Outcome | None:
    """While a renewal charge is being retried (lifecycle.md, "While an integration is
    past_due"): a cancel deletes at once (there is no paid period left to serve; the unpaid
    charge is written off) and there is nothing to reactivate (a new card is the way out)."""
    if integration.billing_state is not BillingState.PAST_DUE:
        return None
    if action is Action.CANCEL and integration.status in BILLABLE_STATUSES:
        return Outcome.DELETE_NOW
    if action is Action.REACTIVATE:
        raise InvalidTransition(
            "This integration's renewal payment failed and is being retried: there is nothing"
            " to reactivate. Update the payment method: the renewal is retried with it.",
            current_status=integration.status.value,
            billing_state=integration.billing_state.value,
        )
    return None


def _require_account_for_reactivation(account_status: AccountStatus, outcome: Outcome) -> None:
    # A disabled account has nothing billable: bringing an integration back goes through the
    # account's own (quoted) reactivation. A cancelling account takes no new paid periods.
    if account_status is AccountStatus.DISABLED:
        raise AccountNotActive(
            "This account is disabled. Reactivate the account first: it brings back its"
            " integrations against one quote.",
            account_status=account_status.value,
        )
    if account_status is AccountStatus.CANCEL_PENDING and outcome in PAID_OUTCOMES:
        raise AccountNotActive(
            "This account's subscription is cancelled. Reactivate the account before paying"
            " to reactivate an integration.",
            account_status=account_status.value,
        )


def _schedule_freeze(
    integration: Integration, command: Command[Action], now: datetime, catalog: Catalog
) -> Decision:
    after = next_version(integration, status=Status.FREEZE_PENDING)
    effective = format_instant(integration.current_period_end)
    return recorded_change(
        integration,
        after,
        DetailType.FREEZE_SCHEDULED,
        command.actor,
        now,
        {"effective_at": effective},
    )


def _schedule_cancel(
    integration: Integration, command: Command[Action], now: datetime, catalog: Catalog
) -> Decision:
    cancellation = _cancellation(command, now)
    after = next_version(
        integration,
        status=Status.CANCEL_PENDING,
        cancellation=cancellation,
        cancelled_from=integration.status,
    )
    effective = format_instant(integration.current_period_end)
    details = {
        "reason": cancellation.reason.value,
        "comment": cancellation.comment,
        "effective_at": effective,
        "previous_status": integration.status.value,
    }
    return recorded_change(
        integration,
        after,
        DetailType.CANCEL_SCHEDULED,
        command.actor,
        now,
        details,
        event={"effective_at": effective, "reason": cancellation.reason.value},
    )


def _cancellation(command: Command[Action], now: datetime) -> Cancellation:
    if command.reason is None:
        raise ValidationFailed(
            "A cancellation needs a reason: "
            + ", ".join(reason.value for reason in CancelReason)
            + ".",
            field="reason",
        )
    comment = command.comment.strip() if command.comment else None
    if comment is not None and len(comment) > COMMENT_MAX_LENGTH:
        raise ValidationFailed(
            f"The comment is limited to {COMMENT_MAX_LENGTH} characters.", field="comment"
        )
    return Cancellation(reason=command.reason, comment=comment or None, requested_at=now)


def _delete_now(
    integration: Integration, command: Command[Action], now: datetime, catalog: Catalog
) -> Decision:
    # A suspended integration has no paid period to wait for: cancelling deletes it at once.
    cancellation = _cancellation(command, now)
    return deletion_decision(integration, now, command.actor, cancellation)


def deletion_decision(
    integration: Integration, now: datetime, actor: Actor, cancellation: Cancellation | None
) -> Decision:
    """Delete an integration: gone with its settings and history, one tombstone kept."""
    reason = cancellation.reason.value if cancellation else None
    tombstone = Tombstone(
        integration_id=integration.id,
        name=integration.name,
        cancelled_at=cancellation.requested_at if cancellation else None,
        deleted_at=now,
        reason=reason,
    )
    # The sync engine stops syncing; it is never asked to remove product listings.
    event = replace(
        integration_event(
            integration, DetailType.INTEGRATION_DELETED, now, reason=reason, name=integration.name
        ),
        sync_enabled=False,
    )
    return Decision(
        before=integration,
        after=None,
        writes_off=unpaid_renewal(integration),
        events=(event,),
        history=(
            history_entry(
                DetailType.INTEGRATION_DELETED,
                actor,
                now,
                {"name": integration.name, "reason": reason},
            ),
        ),
        tombstone=tombstone,
    )


def _revoke_cancel(
    integration: Integration, command: Command[Action], now: datetime, catalog: Catalog
) -> Decision:
    restored = integration.cancelled_from or Status.ACTIVE
    after = next_version(integration, status=restored, cancellation=None, cancelled_from=None)
    return recorded_change(
        integration,
        after,
        DetailType.CANCEL_REVOKED,
        command.actor,
        now,
        {"status": restored.value},
    )


def _revoke_freeze(
    integration: Integration, command: Command[Action], now: datetime, catalog: Catalog
) -> Decision:
    after = next_version(integration, status=Status.ACTIVE)
    return recorded_change(
        integration,
        after,
        DetailType.INTEGRATION_REACTIVATED,
        command.actor,
        now,
        {"from": Status.FREEZE_PENDING.value, "amount": 0},
        event={"amount": 0},
    )


def reactivated(integration: Integration, now: datetime, actor: Actor, amount: int) -> Decision:
    """A frozen integration active again, or a suspended one back to the status it had with a
    new anchored period from now; `amount` is what was paid for it (recorded, not charged)."""
    if integration.status is Status.FROZEN:
        after = next_version(integration, status=Status.ACTIVE)
    else:
        after = next_version(
            integration,
            status=integration.suspended_from or Status.ACTIVE,
            anchor=now,
            period_index=0,
            current_period_start=now,
            current_period_end=add_month(now, 1),
            billing_state=BillingState.OK,
            dunning_attempts=0,
            next_attempt_at=None,
            suspension_reason=None,
            suspended_from=None,
            suspended_at=None,
        )
    return recorded_change(
        integration,
        after,
        DetailType.INTEGRATION_REACTIVATED,
        actor,
        now,
        {"from": integration.status.value, "amount": amount},
        event={"amount": amount},
    )


def _paid_reactivation(
    integration: Integration, command: Command[Action], now: datetime, catalog: Catalog
) -> Decision:
    line = reactivation_line(integration, now, catalog)
    if line is None:  # nothing left to prorate: free
        return reactivated(integration, now, command.actor, 0)
    if command.quote is None:
        raise QuoteRequired(
            "This reactivation costs money: get its quote and present the quote id.",
            amount=line.amount,
        )
    decision = reactivated(integration, now, command.actor, command.quote.amount)
    assert decision.after is not None
    charge = ChargeRequest(
        kind=ChargeKind.QUOTE,
        amount=command.quote.amount,
        currency=catalog.currency,
        description=line.description,
        integration_ids=(integration.id,),
        idempotency_key=f"quote:{command.quote.id}",
        period_start=min(now, decision.after.current_period_end)
        if integration.status is Status.FROZEN
        else decision.after.current_period_start,
        period_end=decision.after.current_period_end,
    )
    return replace(decision, charge=charge)


def _replace_settings(
    integration: Integration, command: Command[Action], now: datetime, catalog: Catalog
) -> Decision:
    # The settings document itself is opaque JSON the store writes beside the integration.
    after = next_version(integration)
    return Decision(
        before=integration,
        after=after,
        history=(history_entry("settings_updated", command.actor, now),),
    )


_Handler = Callable[[Integration, Command[Action], datetime, Catalog], Decision]
_HANDLERS: Mapping[Outcome, _Handler] = MappingProxyType(
    {
        Outcome.SCHEDULE_FREEZE: _schedule_freeze,
        Outcome.SCHEDULE_CANCEL: _schedule_cancel,
        Outcome.DELETE_NOW: _delete_now,
        Outcome.REVOKE_CANCEL: _revoke_cancel,
        Outcome.REVOKE_FREEZE: _revoke_freeze,
        Outcome.UNFREEZE: _paid_reactivation,
        Outcome.RESUME: _paid_reactivation,
        Outcome.REPLACE_SETTINGS: _replace_settings,
    }
)


@dataclass(frozen=True, slots=True)
class NewIntegration:
    name: str
    supplier: str
    channel: str
    plan: str


def create(
    integration_id: str,
    account: Account,
    request: NewIntegration,
    now: datetime,
    actor: Actor,
    catalog: Catalog,
) -> Decision:
    """A new integration, `active` from now, its first month charged up front (the work order).

    Allowed on an `active` or `disabled` account; the caller reactivates a `disabled` one
    (`lifecycle.rules.account.reopen_for_create`) in the same write.
    """
    now = normalize(now)
    if account.status is AccountStatus.CANCEL_PENDING:
        raise AccountNotActive(
            "This account's subscription is cancelled. Reactivate the account before adding"
            " integrations.",
            account_status=account.status.value,
        )
    fee = catalog.monthly_fee(request.plan)
    after = Integration(
        id=integration_id,
        account_id=account.id,
        name=request.name,
        supplier=request.supplier,
        channel=request.channel,
        plan=request.plan,
        status=Status.ACTIVE,
        current_period_start=now,
        current_period_end=add_month(now, 1),
        anchor=now,
        created_at=now,
        currency=catalog.currency,
        version=1,
    )
    charge = ChargeRequest(
        kind=ChargeKind.CREATE,
        amount=fee,
        currency=catalog.currency,
        description=f"{request.name} ({request.plan}): first month, up front",
        integration_ids=(integration_id,),
        idempotency_key=f"create:{integration_id}",
        period_start=after.current_period_start,
        period_end=after.current_period_end,
    )
    return Decision(
        before=None,
        after=after,
        charge=charge if fee > 0 else None,
        events=(
            integration_event(
                after, DetailType.INTEGRATION_CREATED, now, plan=request.plan, amount=fee
            ),
        ),
        history=(
            history_entry(
                DetailType.INTEGRATION_CREATED, actor, now, {"plan": request.plan, "amount": fee}
            ),
        ),
    )
