"""Durable exactly-once charging: the ledger line first, the provider second, the state last.

1. A pending ledger line is written conditionally, keyed by what is paid for (`create:{id}`,
   `quote:{id}`, `renewal:{id}:{period_start}`). A second attempt at the same thing finds it.
2. The provider is called with an idempotency key and the line's id in the metadata.
3. The caller applies the paid decision and the line's new state in one transaction.

A retry after a crash or a timeout finds the line and reconciles with the provider (Stripe
forgets idempotency keys after 24 hours, the ledger does not) instead of charging again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from lifecycle.ids import new_id
from lifecycle.payments.port import PaymentOutcome, PaymentResult
from lifecycle.rules.errors import Conflict, PaymentFailed, PaymentPending
from lifecycle.rules.model import Account, ChargeKind, ChargeRequest, Decision
from lifecycle.store.ledger import ChargeRecord, ChargeStatus
from lifecycle.usecases.services import Services

# How long the worker that wrote a pending line owns the provider call (wall clock): longer
# than the adapter's worst case (three attempts of 10 s) so that two workers never both call.
LEASE_SECONDS = 60


def _lease() -> int:
    return int(time.time()) + LEASE_SECONDS


@dataclass(frozen=True, slots=True)
class Collected:
    """A charge that succeeded: `before` is the ledger line as stored, `after` what it becomes
    once the paid action is applied (write both with `Store.charge_write`)."""

    before: ChargeRecord
    after: ChargeRecord

    @property
    def already_applied(self) -> bool:
        return self.before.applied


def collect(
    services: Services,
    account: Account,
    request: ChargeRequest,
    action: Mapping[str, Any],
    now: datetime,
) -> Collected:
    """Collect `request` exactly once. Raises PaymentFailed (declined: nothing to apply) or
    PaymentPending (outcome unknown: nothing applied, a retry is safe)."""
    if not account.stripe_customer_id or not account.has_payment_method:
        raise PaymentFailed(
            "There is no payment method on file: add one from the billing portal, then retry."
        )
    store = services.store
    record = ChargeRecord(
        id=new_id("ch"),
        account_id=account.id,
        ledger_key=request.ledger,
        kind=request.kind.value,
        amount=request.amount,
        currency=request.currency,
        description=request.description,
        integration_ids=request.integration_ids,
        status=ChargeStatus.PENDING,
        created_at=now,
        updated_at=now,
        attempt=request.attempt,
        action=dict(action),
        lease_until=_lease(),
    )
    try:
        store.begin_charge(record)
    except Conflict:
        existing = store.charge_by_key(account.id, request.ledger)
        if existing is None:
            raise
        settled = _resume(services, account, existing, request, now)
        if settled is not None:
            return settled
        record = store.charge_by_key(account.id, request.ledger) or existing
    return _charge(services, account, record, request, now)


def _resume(
    services: Services,
    account: Account,
    existing: ChargeRecord,
    request: ChargeRequest,
    now: datetime,
) -> Collected | None:
    """A line for this already exists: settle from it, or say a new attempt may be made."""
    store = services.store
    if existing.status is ChargeStatus.SUCCEEDED:
        return Collected(existing, replace(existing, applied=True, updated_at=now))
    if existing.status is ChargeStatus.PENDING:
        found = services.payments.find(
            customer_id=account.stripe_customer_id or "", charge_id=existing.id
        )
        if found is not None:
            return _settle(services, existing, found, now)
        if time.time() < existing.lease_until:
            raise PaymentPending(
                "This payment is being collected right now. Retry in a moment: you will not be"
                " charged twice.",
                charge_id=existing.id,
            )
        # The worker that wrote the line died before reaching the provider: take it over.
        store.save_charge(existing, replace(existing, lease_until=_lease(), updated_at=now))
        return None
    if existing.status is ChargeStatus.FAILED:
        if request.kind is ChargeKind.RENEWAL and existing.attempt >= request.attempt:
            raise PaymentFailed(existing.failure_message or "The renewal charge was declined.")
        # The merchant tries again (maybe with another card): a new attempt on the same line.
        retry = replace(
            existing,
            status=ChargeStatus.PENDING,
            attempt=max(existing.attempt + 1, request.attempt),
            amount=request.amount,
            failure_message=None,
            updated_at=now,
            lease_until=_lease(),
        )
        store.save_charge(existing, retry)
        return None
    raise PaymentFailed(f"This charge is {existing.status.value}; it will not be collected again.")


def _charge(
    services: Services,
    account: Account,
    record: ChargeRecord,
    request: ChargeRequest,
    now: datetime,
) -> Collected:
    key = request.idempotency_key
    if record.attempt > 1 and request.kind is not ChargeKind.RENEWAL:
        key = f"{request.idempotency_key}:attempt-{record.attempt}"
    result = services.payments.charge(
        customer_id=account.stripe_customer_id or "",
        amount=record.amount,
        currency=record.currency,
        description=record.description,
        idempotency_key=key,
        metadata={
            "account_id": account.id,
            "charge_id": record.id,
            "integration_ids": ",".join(record.integration_ids),
            "kind": record.kind,
        },
    )
    return _settle(services, record, result, now)


def _settle(
    services: Services, record: ChargeRecord, result: PaymentResult, now: datetime
) -> Collected:
    if result.outcome is PaymentOutcome.SUCCEEDED:
        paid = replace(
            record,
            status=ChargeStatus.SUCCEEDED,
            stripe_payment_intent=result.payment_intent_id or record.stripe_payment_intent,
            applied=True,
            updated_at=now,
        )
        return Collected(record, paid)
    if result.outcome is PaymentOutcome.FAILED:
        failed = replace(
            record,
            status=ChargeStatus.FAILED,
            stripe_payment_intent=result.payment_intent_id or record.stripe_payment_intent,
            failure_message=result.failure_message or "The card was declined.",
            updated_at=now,
        )
        services.store.save_charge(record, failed)
        raise PaymentFailed(
            f"{failed.failure_message} Nothing was changed; update the payment method and retry.",
            charge_id=record.id,
        )
    raise PaymentPending(
        "The payment could not be confirmed yet. Nothing was applied; retry in a moment with the"
        " same Idempotency-Key: you will not be charged twice.",
        charge_id=record.id,
    )


def apply_paid(
    services: Services, collected: Collected, decision: Decision | None, **commit: Any
) -> bool:
    """Apply the paid decision and mark the ledger line applied, in one transaction; False when
    Stripe's webhook got there first (it applies a success it finds unapplied): the action is
    done once, by it, and the caller answers with the state as stored.

    If the state moved in between for another reason, the line is kept `succeeded` but not
    applied (a retry or the webhook applies it) and the caller gets a retryable Conflict."""
    store = services.store
    try:
        store.commit(
            decision, extra=[store.charge_write(collected.before, collected.after)], **commit
        )
    except Conflict:
        stored = store.get_charge(collected.before.account_id, collected.before.id)
        if stored is not None and stored.status is ChargeStatus.SUCCEEDED and stored.applied:
            return False
        if collected.before.status is not ChargeStatus.SUCCEEDED:
            store.save_charge(collected.before, replace(collected.after, applied=False))
        raise
    return True
