"""Renewal and deletion at the period end: charges, freezes taking effect, dunning, suspension."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from lifecycle.rules.calendar import add_month, format_instant, normalize
from lifecycle.rules.catalog import Catalog
from lifecycle.rules.effects import history_entry, integration_event, next_version, recorded_change
from lifecycle.rules.integration import deletion_decision
from lifecycle.rules.model import (
    DUNNING_RETRY_OFFSETS,
    GRACE_PERIOD,
    SYSTEM,
    AccountStatus,
    BillingState,
    ChargeKind,
    ChargeRequest,
    Decision,
    DetailType,
    DomainEvent,
    Integration,
    Status,
    SuspensionReason,
    renewal_fee,
    renewal_ledger_key,
    unpaid_renewal,
)
from lifecycle.rules.money import format_amount


class DueKind(StrEnum):
    RENEWAL = "renewal"
    DELETION = "deletion"
    # Ledger lines whose money may be taken but not yet applied or refunded (the reconciler).
    SETTLEMENT = "settlement"
    # cancel_pending integrations whose deletion reminder is due (the renewal sweep sends it).
    REMINDER = "reminder"


@dataclass(frozen=True, slots=True)
class DueEntry:
    kind: DueKind
    at: datetime


def due_entry(integration: Integration) -> DueEntry | None:
    """When a scheduled sweep must next look at this integration, and which sweep.

    The store keeps this in the sparse, sharded due index: a suspended integration is in
    neither sweep; a past-due one is due at its next payment retry.
    """
    if integration.status is Status.SUSPENDED:
        return None
    if integration.status is Status.CANCEL_PENDING:
        return DueEntry(DueKind.DELETION, integration.current_period_end)
    if integration.billing_state is BillingState.PAST_DUE and integration.next_attempt_at:
        return DueEntry(DueKind.RENEWAL, integration.next_attempt_at)
    return DueEntry(DueKind.RENEWAL, integration.current_period_end)


# notifications.md: a cancelled integration's users are told this long before its deletion.
REMINDER_LEAD = timedelta(days=3)


def reminder_at(integration: Integration) -> datetime | None:
    """When the deletion reminder of a cancel_pending integration is due: 3 days before its
    period end (a time already past when the cancel came later: due at once). None for any
    other status."""
    if integration.status is not Status.CANCEL_PENDING:
        return None
    return integration.current_period_end - REMINDER_LEAD


def deletion_reminder(integration: Integration, now: datetime) -> DomainEvent | None:
    """The `DeletionReminder` of a cancel_pending integration whose reminder is due at `now`;
    None when it is not due (or the integration is not cancel_pending any more)."""
    due = reminder_at(integration)
    if due is None or normalize(now) < due:
        return None
    return integration_event(
        integration,
        DetailType.DELETION_REMINDER,
        normalize(now),
        name=integration.name,
        deletes_at=format_instant(integration.current_period_end),
        period_end=format_instant(integration.current_period_end),
    )


@dataclass(frozen=True, slots=True)
class Renewal:
    """The renewal decision for one integration at its period end.

    With a `charge`, `paid` is applied once it succeeds and `declined` once it fails; without
    one, `paid` is applied at once (a suspension, or a zero fee).
    """

    charge: ChargeRequest | None
    paid: Decision
    declined: Decision | None = None


def _renewed_status(status: Status) -> Status:
    return Status.FROZEN if status is Status.FREEZE_PENDING else status


def decide_renewal(
    integration: Integration,
    now: datetime,
    *,
    account_status: AccountStatus,
    catalog: Catalog,
) -> Renewal | None:
    """What the renewal sweep does to `integration` at `now`; None when nothing is due.

    The next period is anchored: `[e, add_month(anchor, k + 2))` for the period `k` ending at
    `e`, however late the sweep runs. A cancel_pending integration is never charged (the
    deletion sweep removes it); a suspended one is never looked at.
    """
    now = normalize(now)
    entry = due_entry(integration)
    if entry is None or entry.kind is not DueKind.RENEWAL or now < entry.at:
        return None
    if account_status is not AccountStatus.ACTIVE:
        # The account's subscription is cancelled: this integration stops at its period end.
        return Renewal(
            charge=None,
            paid=suspension(integration, now, SuspensionReason.ACCOUNT_CANCELLED),
        )
    paid, fee = renewed(integration, now, catalog)
    end = integration.current_period_end
    next_end = add_month(integration.anchor, integration.period_index + 2)
    renewed_status = _renewed_status(integration.status)
    period = {"period_start": format_instant(end), "period_end": format_instant(next_end)}
    if fee == 0:
        return Renewal(charge=None, paid=paid)
    attempt = integration.dunning_attempts + 1
    key = renewal_ledger_key(integration.id, end)
    charge = ChargeRequest(
        kind=ChargeKind.RENEWAL,
        amount=fee,
        currency=catalog.currency,
        description=(
            f"{integration.name}: {renewed_status.value.replace('_', ' ')} fee"
            f" {format_amount(fee, catalog.currency)} for {period['period_start'][:10]}"
            f" to {period['period_end'][:10]}"
        ),
        integration_ids=(integration.id,),
        idempotency_key=key if attempt == 1 else f"{key}:attempt-{attempt}",
        period_start=end,
        period_end=next_end,
        attempt=attempt,
        ledger_key=key,
    )
    return Renewal(charge=charge, paid=paid, declined=_declined(integration, now, charge))


def renewed(integration: Integration, now: datetime, catalog: Catalog) -> tuple[Decision, int]:
    """The renewal of the period ending at `current_period_end`, as applied once it is paid
    (by the sweep's charge, a dunning retry, or Stripe's webhook for that charge): the next
    anchored period, a pending freeze taking effect. Returns the decision and the fee."""
    end = integration.current_period_end
    next_end = add_month(integration.anchor, integration.period_index + 2)
    fee = renewal_fee(integration.status, catalog.monthly_fee(integration.plan), catalog.frozen_fee)
    if fee is None:
        raise ValueError(f"a {integration.status.value} integration is not renewed")
    after = next_version(
        integration,
        status=_renewed_status(integration.status),
        period_index=integration.period_index + 1,
        current_period_start=end,
        current_period_end=next_end,
        billing_state=BillingState.OK,
        dunning_attempts=0,
        next_attempt_at=None,
    )
    period = {"period_start": format_instant(end), "period_end": format_instant(next_end)}
    events = [integration_event(after, DetailType.INTEGRATION_RENEWED, now, amount=fee, **period)]
    history = [
        history_entry(DetailType.INTEGRATION_RENEWED, SYSTEM, now, {"amount": fee, **period})
    ]
    if integration.status is Status.FREEZE_PENDING:
        events.insert(0, integration_event(after, DetailType.INTEGRATION_FROZEN, now))
        history.insert(0, history_entry(DetailType.INTEGRATION_FROZEN, SYSTEM, now))
    decision = Decision(
        before=integration, after=after, events=tuple(events), history=tuple(history)
    )
    return decision, fee


def _declined(integration: Integration, now: datetime, charge: ChargeRequest) -> Decision:
    """A failed renewal charge: past due (still syncing) until the grace period is over."""
    end = integration.current_period_end
    if now >= end + GRACE_PERIOD:
        suspended = suspension(integration, now, SuspensionReason.NON_PAYMENT)
        failed = integration_event(
            integration,
            DetailType.PAYMENT_FAILED,
            now,
            amount=charge.amount,
            currency=charge.currency,
            attempt=charge.attempt,
            name=integration.name,
            suspended=True,
        )
        return Decision(
            before=integration,
            after=suspended.after,
            writes_off=charge.ledger,
            events=(failed, *suspended.events),
            history=(
                history_entry(
                    DetailType.PAYMENT_FAILED,
                    SYSTEM,
                    now,
                    {"amount": charge.amount, "attempt": charge.attempt, "written_off": True},
                ),
                *suspended.history,
            ),
        )
    next_attempt = next((end + o for o in DUNNING_RETRY_OFFSETS if end + o > now), None)
    assert next_attempt is not None  # now < end + GRACE_PERIOD, the last offset
    after = next_version(
        integration,
        billing_state=BillingState.PAST_DUE,
        dunning_attempts=charge.attempt,
        next_attempt_at=next_attempt,
    )
    details = {
        "amount": charge.amount,
        "attempt": charge.attempt,
        "next_attempt_at": format_instant(next_attempt),
    }
    # The notifier's email says when the grace period ends (lifecycle.md: suspended 7 days
    # after the renewal date when still unpaid).
    notice = {
        "currency": charge.currency,
        "name": integration.name,
        "suspends_at": format_instant(end + GRACE_PERIOD),
    }
    return recorded_change(
        integration,
        after,
        DetailType.PAYMENT_FAILED,
        SYSTEM,
        now,
        details,
        event={**details, **notice},
    )


def suspension(integration: Integration, now: datetime, reason: SuspensionReason) -> Decision:
    """Suspend at the period end (or at once, for a past-due one whose account is cancelled):
    syncing stops, settings are kept, nothing is billed.

    A pending freeze is remembered as `frozen` (it took effect at this renewal); an unpaid
    charge being retried is written off.
    """
    after = next_version(
        integration,
        status=Status.SUSPENDED,
        suspension_reason=reason,
        suspended_from=_renewed_status(integration.status),
        suspended_at=now,
        billing_state=BillingState.OK,
        dunning_attempts=0,
        next_attempt_at=None,
    )
    details = {
        "reason": reason.value,
        "resumes_as": after.suspended_from.value if after.suspended_from else None,
    }
    return recorded_change(
        integration,
        after,
        DetailType.INTEGRATION_SUSPENDED,
        SYSTEM,
        now,
        details,
        event={"reason": reason.value, "name": integration.name},
        writes_off=unpaid_renewal(integration),
    )


def decide_deletion(integration: Integration, now: datetime) -> Decision | None:
    """Delete a cancel_pending integration whose paid period has ended; None otherwise."""
    now = normalize(now)
    if integration.status is not Status.CANCEL_PENDING or now < integration.current_period_end:
        return None
    return deletion_decision(integration, now, SYSTEM, integration.cancellation)
