"""Scheduled work: find what is due, renew one integration (charge, dunning, suspension),
delete what was cancelled. Every step is safe to run twice, concurrently, or after a crash:
the due index is re-read, the integration re-decided from its current version, the charge
guarded by the ledger."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from lifecycle.observability import logger, record_events
from lifecycle.rules.errors import Conflict, PaymentFailed
from lifecycle.rules.model import (
    SYSTEM,
    Account,
    AccountStatus,
    Decision,
    Integration,
    Status,
)
from lifecycle.rules.paid import RenewalPaid
from lifecycle.rules.renewal import DueKind, decide_deletion, decide_renewal
from lifecycle.store.repository import DueKey
from lifecycle.usecases import charging
from lifecycle.usecases.charging import Outcome as SettleOutcome
from lifecycle.usecases.charging import Purchase, collect, settle, write_offs
from lifecycle.usecases.services import Services
from lifecycle.usecases.settlement import account_settlement


class RateLimiter:
    """At most `per_second` acquisitions per second in this process (the Stripe budget divided
    by the workers' maximum concurrency)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
        if wait > 0:
            time.sleep(wait)


def due(services: Services, kind: DueKind) -> Iterator[DueKey]:
    """What the sweep of `kind` must look at now, from the sparse due index."""
    return services.store.due(kind, services.clock.now())


def sweep(services: Services) -> Iterator[dict[str, str]]:
    """The renewal sweep's messages for the worker: every ledger line that may hold money not
    yet applied or refunded (reconciled first: it is older), then every integration due."""
    now = services.clock.now()
    for account_id, charge_id in services.store.unsettled(now):
        yield {"account_id": account_id, "charge_id": charge_id}
    for key in services.store.due(DueKind.RENEWAL, now):
        yield {
            "account_id": key.account_id,
            "integration_id": key.integration_id,
            "due_at": key.due_at,
        }


def reconcile(services: Services, account_id: str, charge_id: str) -> str:
    """Apply or refund one unsettled ledger line (a message of the sweep)."""
    return charging.reconcile(services, account_id, charge_id)


@dataclass(frozen=True, slots=True)
class Outcome:
    integration_id: str
    result: str  # renewed | past_due | suspended | not_due | gone | pending | refunded


def _account(services: Services, account_id: str, now: datetime) -> Account:
    account = services.store.get_account(account_id)
    return account or Account(id=account_id, status=AccountStatus.ACTIVE, created_at=now)


def renew(
    services: Services, account_id: str, integration_id: str, limiter: RateLimiter | None = None
) -> Outcome:
    """Renew one integration if it is due: charge for the next anchored period and apply it,
    or record the decline (dunning), or suspend. Raises PaymentPending when the provider's
    answer is unknown (the message is retried; the ledger prevents a second charge)."""
    now = services.clock.now()
    loaded = services.store.load(account_id, integration_id)
    integration = loaded.integration
    if integration is None:
        return Outcome(integration_id, "gone")
    account = loaded.account or _account(services, account_id, now)
    renewal = decide_renewal(
        integration, now, account_status=account.status, catalog=services.catalog
    )
    if renewal is None:
        return Outcome(integration_id, "not_due")  # a duplicate, or already renewed
    if renewal.charge is None:
        _commit(services, account, renewal.paid, now)
        return Outcome(integration_id, _result(renewal.paid.after))
    if limiter is not None:
        limiter.acquire()
    action = RenewalPaid(integration.id, integration.current_period_end)
    purchase = Purchase(renewal.charge, action, request_ref=renewal.charge.ledger)
    try:
        collected = collect(services, account, purchase, now)
    except PaymentFailed:
        assert renewal.declined is not None
        _declined(services, account, integration, renewal.declined, now)
        return Outcome(integration_id, _result(renewal.declined.after))
    if collected.already_applied:
        return Outcome(integration_id, "not_due")
    settlement = settle(
        services,
        collected.line,
        collected.payment_intent,
        SYSTEM,
        state=(account, {integration.id: integration}),
    )
    if settlement.outcome is SettleOutcome.APPLIED:
        return Outcome(integration_id, "renewed")
    if settlement.outcome is SettleOutcome.ALREADY_APPLIED:
        return Outcome(integration_id, "not_due")
    return Outcome(integration_id, "refunded")


def _result(after: Integration | None) -> str:
    if after is None:
        return "gone"
    if after.status is Status.SUSPENDED:
        return "suspended"
    return "past_due" if after.billing_state.value == "past_due" else "renewed"


def _commit(services: Services, account: Account, decision: Decision, now: datetime) -> None:
    services.store.commit(
        decision,
        account=account_settlement(services, account, decision, now, SYSTEM),
        extra=write_offs(services, [decision], now),
    )
    record_events(decision.events)


def _declined(
    services: Services,
    account: Account,
    integration: Integration,
    declined: Decision,
    now: datetime,
) -> None:
    """Record a declined renewal: past due until the last retry, then suspended with the unpaid
    charge written off, in the same transaction."""
    try:
        _commit(services, account, declined, now)
    except Conflict:
        # The integration changed meanwhile (a cancel, another worker): the next sweep decides
        # again from its current state; the failed attempt stays in the ledger.
        logger.info(
            "declined renewal not recorded: integration changed",
            extra={"integration_id": integration.id},
        )


def delete(services: Services, account_id: str, integration_id: str) -> Outcome:
    """Delete a cancel_pending integration whose paid period has ended, conditionally on the
    version read: a reactivation racing it wins or loses cleanly."""
    now = services.clock.now()
    integration = services.store.get_integration(account_id, integration_id)
    if integration is None:
        # Deleted by an earlier run that died before purging its history: finish the job.
        services.store.purge_history(account_id, integration_id)
        return Outcome(integration_id, "purged")
    decision = decide_deletion(integration, now)
    if decision is None:
        return Outcome(integration_id, "not_due")
    services.store.commit(decision)
    record_events(decision.events)
    # History lines go after the integration (one transaction cannot hold them all); the
    # integration is already unreadable, and the purge marker written with the deletion brings
    # the next sweep back here if this process dies first.
    services.store.purge_history(account_id, integration_id)
    return Outcome(integration_id, "deleted")


def delete_due(services: Services) -> list[Outcome]:
    outcomes = []
    for key in due(services, DueKind.DELETION):
        try:
            outcomes.append(delete(services, key.account_id, key.integration_id))
        except Conflict:
            outcomes.append(Outcome(key.integration_id, "conflict"))  # reactivated meanwhile
    return outcomes
