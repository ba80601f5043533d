"""Durable exactly-once charging: the ledger line first, the provider second, the state last;
and a paid action that can no longer be applied is refunded, never kept.

1. A pending ledger line is written conditionally, keyed by the thing bought (a change of one
   subject from the state it is in: `rules.paid.ledger_key`), together with checks that the
   subject is still as the quote saw it. A second request for the same change finds the line
   and is refused before Stripe; a retry of the same request reconciles with it.
2. The provider is called with an idempotency key and the line's id in the metadata.
3. `settle` applies what was paid for to the state as it is *now* (`rules.paid.apply_paid`),
   in one transaction with the line, or refunds the charge in full when it no longer applies.

The request, Stripe's webhook and the sweep's reconciler all settle through the same function
(`lifecycle.usecases.settling`), each conditionally on the line's revision, so whichever learns
of the payment first settles it and the others find it settled. Refunds are recorded by
`lifecycle.usecases.refunds`, unsettled lines swept by `lifecycle.usecases.reconciler`; the
names are exported from here too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from lifecycle.ids import new_id
from lifecycle.payments.port import PaymentOutcome, PaymentRequest, PaymentResult
from lifecycle.rules.errors import (
    Conflict,
    DomainError,
    PaymentFailed,
    PaymentPending,
    QuoteStale,
)
from lifecycle.rules.ledger import ChargeRecord, ChargeStatus
from lifecycle.rules.model import (
    Account,
    Actor,
    ChargeKind,
    ChargeRequest,
    Decision,
    Integration,
)
from lifecycle.rules.paid import (
    Applied,
)
from lifecycle.store.repository import GuardTaken, SubjectChanged
from lifecycle.usecases import leases
from lifecycle.usecases.purchase import Collected, Outcome, Purchase, Settlement
from lifecycle.usecases.reconciler import reconcile
from lifecycle.usecases.refunds import record_refund
from lifecycle.usecases.services import Services
from lifecycle.usecases.settling import refund, settle

__all__ = [
    "Collected",
    "Outcome",
    "Purchase",
    "Settlement",
    "buy",
    "collect",
    "paid_through",
    "reconcile",
    "record_refund",
    "refund",
    "settle",
    "write_offs",
]


# ---------------------------------------------------------------------------- collecting


def collect(services: Services, account: Account, purchase: Purchase, now: datetime) -> Collected:
    """Collect `purchase` exactly once. Raises PaymentFailed (declined: nothing to apply),
    PaymentPending (outcome unknown: nothing applied, a retry is safe), Conflict (another
    request is paying for the same change: nothing charged) or QuoteStale (the subject changed
    since the quote: nothing charged)."""
    if not account.stripe_customer_id or not account.has_payment_method:
        raise PaymentFailed(
            "There is no payment method on file: add one (Account, Add payment method), then"
            " retry. Nothing was charged.",
            payment_method_required=True,
        )
    request = purchase.charge
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
        action=purchase.action,
        request_ref=purchase.request_ref,
        customer_id=account.stripe_customer_id,
        lease_until=leases.lease_until(),
    )
    try:
        services.store.begin_charge(record, purchase.expect)
    except SubjectChanged:
        raise _changed_since_quote() from None
    except GuardTaken:
        existing = services.store.charge_by_key(account.id, request.ledger)
        if existing is None:
            raise Conflict("This changed while your payment was being made. Retry.") from None
        resumed = _resume(services, account, existing, record, purchase, now)
        if isinstance(resumed, Collected):
            return resumed
        record = resumed
    return _charge(services, account, record, request, now)


def _resume(
    services: Services,
    account: Account,
    existing: ChargeRecord,
    fresh: ChargeRecord,
    purchase: Purchase,
    now: datetime,
) -> Collected | ChargeRecord:
    """The change already has a ledger line: settle from it, refuse, or return the line that
    the provider is to be called for now (a new attempt)."""
    same = existing.request_ref == purchase.request_ref
    if existing.status is ChargeStatus.SUCCEEDED:
        if existing.applied and not same:
            raise QuoteStale("This change was paid for and applied already. Nothing was charged.")
        if not existing.applied and (not same or existing.refund_reason is not None):
            raise _being_settled(existing, same)
        return Collected(existing, existing.stripe_payment_intent)
    if existing.status is ChargeStatus.PENDING:
        if not same:
            raise _being_settled(existing, same)
        return _resume_pending(services, account, existing, now)
    if existing.status is ChargeStatus.FAILED:
        return _retry_failed(services, existing, fresh, purchase)
    if existing.status is ChargeStatus.REFUNDED:
        if same and purchase.charge.kind is not ChargeKind.RENEWAL:
            raise QuoteStale(
                "This payment was refunded: what it was for had changed. Ask for a new quote.",
                refunded=True,
                charge_id=existing.id,
            )
        return _supersede(services, existing, fresh, purchase)
    raise PaymentFailed(f"This charge is {existing.status.value}; it will not be collected again.")


def _resume_pending(
    services: Services, account: Account, existing: ChargeRecord, now: datetime
) -> Collected | ChargeRecord:
    found = services.payments.find(
        customer_id=existing.customer_id or account.stripe_customer_id or "",
        charge_id=existing.id,
    )
    if found is not None:
        return _outcome(services, existing, found, now)
    if leases.wall_clock() < existing.lease_until:
        raise PaymentPending(
            "This payment is being collected right now. Retry in a moment: you will not be"
            " charged twice.",
            charge_id=existing.id,
        )
    # The worker that wrote the line died before reaching the provider: take it over.
    taken = replace(existing, lease_until=leases.lease_until(), updated_at=now)
    services.store.save_charge(existing, taken)
    return replace(taken, revision=existing.revision + 1)


# What an attempt at a purchase writes on its ledger line; the rest (its id, what it buys,
# the PaymentIntent of an earlier attempt) stays as the line has it.
_ATTEMPT_FIELDS = (
    "status",
    "amount",
    "description",
    "action",
    "request_ref",
    "customer_id",
    "failure_message",
    "updated_at",
    "lease_until",
)


def _retry_failed(
    services: Services, existing: ChargeRecord, fresh: ChargeRecord, purchase: Purchase
) -> ChargeRecord:
    request = purchase.charge
    if request.kind is ChargeKind.RENEWAL and existing.attempt >= request.attempt:
        raise PaymentFailed(existing.failure_message or "The renewal charge was declined.")
    # The merchant tries again (maybe with another card, maybe with a new quote for the same
    # change): a new attempt on the same line, as `collect` would open it, taken by one request.
    retry = replace(
        existing,
        attempt=max(existing.attempt + 1, fresh.attempt),
        **{name: getattr(fresh, name) for name in _ATTEMPT_FIELDS},
    )
    services.store.retry_charge(existing, retry)
    return replace(retry, revision=existing.revision + 1)


def _supersede(
    services: Services, existing: ChargeRecord, fresh: ChargeRecord, purchase: Purchase
) -> ChargeRecord:
    """The change was bought before and refunded (it no longer applied then): it is bought
    again on a line of its own, the guard moving to it conditionally (one taker wins)."""
    fresh = replace(fresh, supersedes=existing.id)
    try:
        services.store.supersede_charge(existing, fresh, purchase.expect)
    except SubjectChanged:
        raise _changed_since_quote() from None
    except GuardTaken:
        raise Conflict(
            "Another request is paying for this change right now. Nothing was charged."
        ) from None
    return fresh


def _changed_since_quote() -> QuoteStale:
    """The ledger line was refused: the subject is no longer as the quote saw it."""
    return QuoteStale(
        "Something this quote was priced from has changed since. Nothing was charged; ask for a"
        " new quote."
    )


def _being_settled(existing: ChargeRecord, same: bool) -> DomainError:
    if same:
        return PaymentPending(
            "This payment is being settled. Retry in a moment: you will not be charged twice.",
            charge_id=existing.id,
        )
    return Conflict(
        "Another request is paying for this change right now. Nothing was charged; reload to"
        " see the result."
    )


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
    if record.supersedes:
        # A new line for a change bought before and refunded: Stripe must not replay the
        # refunded PaymentIntent for a key it still remembers.
        key = f"{key}:{record.id}"
    payment = PaymentRequest(
        customer_id=account.stripe_customer_id or "",
        amount=record.amount,
        currency=record.currency,
        description=record.description,
        idempotency_key=key,
        metadata={
            "account_id": account.id,
            "charge_id": record.id,
            # Where the line is (it is keyed by what it bought): the webhook reads it directly.
            "ledger_key": record.ledger_key,
            "integration_ids": ",".join(record.integration_ids),
            "kind": record.kind,
        },
    )
    return _outcome(services, record, services.payments.charge(payment), now)


def _outcome(
    services: Services, record: ChargeRecord, result: PaymentResult, now: datetime
) -> Collected:
    if result.outcome is PaymentOutcome.SUCCEEDED:
        return Collected(record, result.payment_intent_id or record.stripe_payment_intent)
    if result.outcome is PaymentOutcome.FAILED:
        failed = replace(
            record,
            status=ChargeStatus.FAILED,
            stripe_payment_intent=result.payment_intent_id or record.stripe_payment_intent,
            failure_message=result.failure_message or "The card was declined.",
            updated_at=now,
        )
        # A lost race: the line moved on meanwhile (Stripe's webhook said the same).
        with contextlib.suppress(Conflict):
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


def paid_through(services: Services, account_id: str, quote_id: str) -> bool:
    """Whether this quote was paid and applied already (a retry answers as the first did);
    raises QuoteStale when its payment was refunded (what it was for changed)."""
    line = services.store.charge_by_ref(account_id, quote_id)
    if line is None or line.request_ref != quote_id:
        return False
    if line.status is ChargeStatus.SUCCEEDED and line.applied:
        return True
    if line.status is ChargeStatus.REFUNDED or line.refund_reason is not None:
        raise QuoteStale(
            "This quote's payment was refunded: what it was for changed before it could be"
            " applied. Ask for a new quote.",
            refunded=True,
            charge_id=line.id,
        )
    return False


def write_offs(
    services: Services, decisions: Iterable[Decision], now: datetime
) -> list[dict[str, Any]]:
    """The ledger writes that write off the unpaid renewal charges these decisions stop
    retrying (conditional on each line's revision: committed with the decisions, or not)."""
    writes = []
    for decision in decisions:
        if decision.writes_off is None or decision.before is None:
            continue
        line = services.store.charge_by_key(decision.before.account_id, decision.writes_off)
        if line is not None and line.status is ChargeStatus.FAILED:
            written_off = replace(line, status=ChargeStatus.WRITTEN_OFF, updated_at=now)
            writes.append(services.store.charge_write(line, written_off))
    return writes


def buy(
    services: Services,
    account: Account,
    purchase: Purchase,
    actor: Actor,
    now: datetime,
    state: tuple[Account, dict[str, Integration]],
) -> Applied | None:
    """A request's purchase: collected once, applied to the state as it is now, or refunded
    (raised as the error that says why, with `refunded: true`). Returns what this call applied,
    or None when a retry, the webhook or the reconciler applied it."""
    collected = collect(services, account, purchase, now)
    if collected.already_applied:
        return None
    settlement = settle(services, collected.line, collected.payment_intent, actor, state=state)
    settlement.raise_if_refunded()
    return settlement.applied
