"""The account's payment method as Stripe confirms it, and what a new one sets in motion: every
past-due renewal of the account is retried at the next renewal sweep (lifecycle.md, "While an
integration is past_due")."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from lifecycle.rules.calendar import format_instant, normalize
from lifecycle.rules.effects import history_entry, next_version
from lifecycle.rules.model import (
    Account,
    AccountDecision,
    Actor,
    BillingState,
    Decision,
    DetailType,
    DomainEvent,
    Integration,
    Status,
)


def payment_method_changed(
    account: Account, payment_method_id: str | None, now: datetime, actor: Actor
) -> AccountDecision | None:
    """The account once Stripe says its customer's default payment method is
    `payment_method_id` (None: there is none); None when that is what the account says
    already. `has_payment_method` follows the default payment method, nothing else."""
    has = payment_method_id is not None
    if account.payment_method_id == payment_method_id and account.has_payment_method == has:
        return None
    now = normalize(now)
    after = replace(
        account,
        has_payment_method=has,
        payment_method_id=payment_method_id,
        version=account.version + 1,
    )
    kind = "payment_method_updated" if has else "payment_method_removed"
    return AccountDecision(
        before=account,
        after=after,
        events=(
            DomainEvent(
                detail_type=DetailType.PAYMENT_METHOD_UPDATED,
                account_id=account.id,
                at=now,
                data={"has_payment_method": has},
            ),
        ),
        activity=(history_entry(kind, actor, now),),
    )


def retries_now(decision: AccountDecision) -> bool:
    """Whether the change gives the account a new payment method to retry past-due renewals
    with (set or replaced; not removed)."""
    return (
        decision.after.payment_method_id is not None
        and decision.after.payment_method_id != decision.before.payment_method_id
    )


def retry_now(integration: Integration, now: datetime, actor: Actor) -> Decision | None:
    """A past-due renewal brought forward to `now`, so that the next renewal sweep retries it
    with the new payment method (the due index follows `next_attempt_at`); None when it is not
    past due or is due already. The dunning calendar is unchanged: a retry that fails again
    waits for the next scheduled retry, and day 7 still suspends."""
    now = normalize(now)
    if integration.billing_state is not BillingState.PAST_DUE:
        return None
    if integration.status is Status.SUSPENDED:
        return None
    if integration.next_attempt_at is not None and integration.next_attempt_at <= now:
        return None
    after = next_version(integration, next_attempt_at=now)
    return Decision(
        before=integration,
        after=after,
        history=(
            history_entry(
                "payment_retry_scheduled",
                actor,
                now,
                {"reason": "payment_method_updated", "next_attempt_at": format_instant(now)},
            ),
        ),
    )
