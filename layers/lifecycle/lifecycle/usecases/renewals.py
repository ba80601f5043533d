"""Scheduled work: find what is due, renew one integration (charge, dunning, suspension),
delete what was cancelled. Every step is safe to run twice, concurrently, or after a crash:
the due index is re-read, the integration re-decided from its current version, the charge
guarded by the ledger."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

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
from lifecycle.store.repository import DUE_SHARDS, DueKey
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


# ---------------------------------------------------------------------------- the sweep

BATCH = 10  # SendMessageBatch's limit: the sweep leases, sends and may stop a batch at a time
# A leased entry stays out of the sweeps' reach this long, plus the time the workers need to
# reach it at the Stripe budget: longer than a message's own life in the queue when its
# renewal keeps failing (5 receives, 24 minutes apart: RenewalQueue), so a message SQS still
# retries is not sent a second time; an entry whose message was lost comes back after it.
LEASE = timedelta(hours=2)


@dataclass(frozen=True, slots=True)
class Lease:
    """How long the sweep leases what it sends: `base`, plus the n-th entry of a run's
    n / `per_second` (the workers drain the queue at the Stripe budget, so the last of a big
    run is reached last)."""

    base: timedelta = LEASE
    per_second: float = 25.0

    def until(self, now: datetime, position: int) -> datetime:
        return now + self.base + timedelta(seconds=position / max(self.per_second, 1e-9))


@dataclass(frozen=True, slots=True)
class Message:
    """One message of the sweep for the worker; `leased`/`read` when it holds a lease (the
    entry's position now, and where it was), so that a message the queue refuses can give the
    lease back."""

    body: dict[str, str]
    leased: DueKey | None = None
    read: DueKey | None = None


def _renewal_message(key: DueKey) -> dict[str, str]:
    return {
        "account_id": key.account_id,
        "integration_id": key.integration_id,
        "due_at": key.due_at,
    }


# The due entries the renewal sweep leases and sends, and the message each becomes. Another
# kind of scheduled work is one more line here (and the worker's dispatch on its message).
LEASED_KINDS: tuple[tuple[DueKind, Callable[[DueKey], dict[str, str]]], ...] = (
    (DueKind.RENEWAL, _renewal_message),
)


def _never() -> bool:
    return False


def sweep_batches(
    services: Services,
    *,
    stop: Callable[[], bool] = _never,
    lease: Lease = Lease(),
    size: int = BATCH,
) -> Iterator[list[Message]]:
    """The renewal sweep's messages for the worker, a batch (at most `size`) at a time.

    First every ledger line that may hold money not yet applied or refunded (the reconciler:
    older, and few; not leased, so each is sent again at every run while it stays unsettled),
    then every due entry of `LEASED_KINDS`, each leased as it is taken: a run sends an entry
    only if it moved it from the position it read, so overlapping runs never send one twice.

    `stop` is asked before each batch: once it says so, the sweep ends cleanly after the batch
    it has sent (nothing is leased that is not handed out), and the next run goes on from
    there: what is left is still due.
    """
    now = services.clock.now()
    pending: list[Message] = []
    for account_id, charge_id, ledger_key in services.store.unsettled(now):
        pending.append(
            Message({"account_id": account_id, "charge_id": charge_id, "ledger_key": ledger_key})
        )
        if len(pending) == size:
            if stop():
                return
            yield pending
            pending = []
    if pending:
        if stop():
            return
        yield pending
    for kind, message in LEASED_KINDS:
        yield from _lease_and_yield(services, kind, message, now, stop, lease, size)


def _lease_and_yield(
    services: Services,
    kind: DueKind,
    message: Callable[[DueKey], dict[str, str]],
    now: datetime,
    stop: Callable[[], bool],
    lease: Lease,
    size: int,
) -> Iterator[list[Message]]:
    """Every due entry of `kind`, leased a batch at a time (side by side), as messages."""
    position = 0
    # A run starts at a shard of its own: runs that overlap lease mostly different entries
    # instead of racing for the same ones (each still sends only what it leased).
    first_shard = random.randrange(DUE_SHARDS)  # noqa: S311 - spreads work, guards nothing
    for page in services.store.due_pages(kind, now, page_size=size, first_shard=first_shard):
        if stop():
            return
        until = lease.until(now, position)
        won = services.store.lease_all(page, until)
        if not won:
            continue
        position += len(won)
        read = {key.integration_id: key for key in page}
        yield [Message(message(read[k.integration_id]), k, read[k.integration_id]) for k in won]


def sweep(services: Services, **options: Any) -> Iterator[dict[str, str]]:
    """The messages of one sweep run, one after the other (`sweep_batches`, flattened)."""
    for batch in sweep_batches(services, **options):
        for message in batch:
            yield message.body


def release(services: Services, messages: Iterable[Message]) -> int:
    """Give back the leases of messages the queue did not take: the next run sends them."""
    return sum(
        1
        for m in messages
        if m.leased is not None and m.read is not None and services.store.release(m.leased, m.read)
    )


def reconcile(
    services: Services, account_id: str, charge_id: str, ledger_key: str | None = None
) -> str:
    """Apply or refund one unsettled ledger line (a message of the sweep)."""
    return charging.reconcile(services, account_id, charge_id, ledger_key)


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
    loaded = services.store.load(account_id, integration_id, receipts=True)
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
        issued=loaded.receipts_issued,
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
