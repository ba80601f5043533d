"""Settling a payment: what it paid for applied to the state as it is now, in one transaction with
its ledger line, or the charge refunded in full when it no longer applies (exactly once: the
refund is claimed on the line first). The request, Stripe's webhook and the sweep's reconciler
all settle through `settle`, each conditionally on the line's revision.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace

from lifecycle.observability import logger, metrics, record_events
from lifecycle.payments.port import PaymentOutcome, PaymentsUnavailable, RefundRequest
from lifecycle.rules.errors import (
    Conflict,
    DomainError,
)
from lifecycle.rules.ledger import NOT_APPLIED, ChargeRecord, ChargeStatus, receipt_number
from lifecycle.rules.model import (
    Account,
    Actor,
    ChargeKind,
    Integration,
)
from lifecycle.rules.paid import (
    AccountReactivationPaid,
    NotApplicable,
    apply_paid,
    subject_ids,
)
from lifecycle.rules.receipts import charge_succeeded, receipt_items
from lifecycle.usecases import leases
from lifecycle.usecases.purchase import ATTEMPTS, RECEIPT_RACES, Outcome, Settlement
from lifecycle.usecases.refunds import record_refund
from lifecycle.usecases.services import Services

# ---------------------------------------------------------------------------- settling


def settle(
    services: Services,
    line: ChargeRecord,
    payment_intent: str | None,
    actor: Actor,
    *,
    state: tuple[Account, dict[str, Integration]] | None = None,
    issued: int | None = None,
) -> Settlement:
    """Apply what a succeeded charge paid for, to the state as it is now, in one transaction
    with the ledger line; or refund it in full when it no longer applies. `line` is the line as
    stored; `payment_intent` the PaymentIntent that succeeded. `state` (account, integrations)
    and `issued` (the account's receipt counter) save reads when the caller has just loaded
    them: both are only hints, the transaction is conditional on each."""
    store = services.store
    attempts = races = 0
    while attempts < ATTEMPTS:
        now = services.clock.now()
        if line.applied and line.status is ChargeStatus.SUCCEEDED:
            return Settlement(Outcome.ALREADY_APPLIED, line)
        if line.status is ChargeStatus.REFUNDED:
            return Settlement(Outcome.REFUNDED, line)
        if line.refund_reason is not None:
            return refund(services, line, reason=line.refund_reason, actor=actor)
        paid = replace(
            line,
            status=ChargeStatus.SUCCEEDED,
            stripe_payment_intent=payment_intent or line.stripe_payment_intent,
            failure_message=None,
            updated_at=now,
        )
        if line.action is None:
            # A line with nothing to apply (it predates typed actions): money is never kept
            # for nothing.
            return refund(services, paid, reason=NOT_APPLIED, actor=actor, before=line)
        account, integrations = state or _state(services, line)
        state = None
        decided = apply_paid(
            line.action,
            account=account,
            integrations=integrations,
            amount=line.amount,
            now=now,
            actor=actor,
            catalog=services.catalog,
        )
        if isinstance(decided, NotApplicable):
            logger.warning(
                "paid action no longer applies: refunding",
                extra={
                    "charge_id": line.id,
                    "account_id": line.account_id,
                    "why": decided.error.code,
                },
            )
            return refund(
                services, paid, reason=NOT_APPLIED, actor=actor, before=line, why=decided.error
            )
        # The receipt: the account's next number, taken in this transaction (the counter's
        # conditional write), with what each item got, and `ChargeSucceeded` in the outbox
        # beside the line (notifications.md): once, as the line becomes succeeded and applied.
        if issued is None:
            issued = store.receipts_issued(line.account_id)
        done = replace(
            paid,
            applied=True,
            lease_until=0,
            receipt_number=receipt_number(line.account_id, issued + 1),
            succeeded_at=now,
            receipt_items=receipt_items(
                line.action, decided, line.amount, now, services.catalog, line.description
            ),
        )
        succeeded = charge_succeeded(done, now)
        try:
            store.commit(
                decided.integration,
                account=decided.account,
                extra=[
                    store.charge_write(line, done),
                    store.receipt_write(line.account_id, issued),
                    *store.ledger_effects(line, "succeeded", events=[succeeded]),
                ],
                settings={} if line.kind == ChargeKind.CREATE.value else None,
            )
        except Conflict:
            # Something moved (the line, or the state): decide again from what is stored now.
            fresh = store.reload_charge(line)
            if fresh is None:
                raise
            taken, issued = issued, None  # the next attempt reads the counter again
            if fresh.revision == line.revision and races < RECEIPT_RACES:
                issued = store.receipts_issued(line.account_id)  # read here: the next hint
            if issued is not None and issued != taken:
                # Only another charge of the account took the number: that is no change of
                # what is paid for, and it does not count against the attempts.
                races += 1
                time.sleep(random.uniform(0, 0.005 * races))  # noqa: S311 - jitter, not secrets
            else:
                attempts += 1
            line = fresh
            continue
        record_events((*decided.events, succeeded))
        return Settlement(Outcome.APPLIED, replace(done, revision=line.revision + 1), decided)
    raise Conflict("This kept changing while the payment was applied. Retry in a moment.")


def _state(services: Services, line: ChargeRecord) -> tuple[Account, dict[str, Integration]]:
    """The account and the integrations a paid action names, as stored now."""
    store = services.store
    assert line.action is not None
    if isinstance(line.action, AccountReactivationPaid):
        account = store.get_account(line.account_id)
        found = store.all_integrations(line.account_id)
    else:
        (integration_id,) = subject_ids(line.action)
        loaded = store.load(line.account_id, integration_id)
        account, found = loaded.account, [loaded.integration] if loaded.integration else []
    if account is None:
        raise Conflict("The account of this payment is gone.")
    return account, {i.id: i for i in found}


# ---------------------------------------------------------------------------- refunding


def refund(
    services: Services,
    line: ChargeRecord,
    *,
    reason: str,
    actor: Actor,
    before: ChargeRecord | None = None,
    why: DomainError | None = None,
) -> Settlement:
    """Refund a succeeded charge in full, exactly once.

    The refund is claimed on the line first (its reason and a lease, conditionally on the
    revision: one claimant), then asked of Stripe with the idempotency key `refund:{charge id}`
    (after a look-up when a claim is resumed: Stripe forgets keys after 24 hours), then
    recorded: the line `refunded`, history and account activity lines, `ChargeRefunded`.
    `before` is the line as stored when `line` carries facts not yet written (the success)."""
    store = services.store
    stored = before or line
    resumed = stored.refund_reason is not None
    if resumed and leases.wall_clock() < stored.lease_until:
        return Settlement(Outcome.REFUND_PENDING, stored, reason=why)  # someone is on it
    # A new claim, or one whose claimant died half-way taken over: one claimant wins.
    claim = (
        replace(stored, lease_until=leases.lease_until(), updated_at=services.clock.now())
        if resumed
        else replace(line, refund_reason=reason, applied=False, lease_until=leases.lease_until())
    )
    try:
        store.save_charge(stored, claim)
    except Conflict:
        fresh = store.reload_charge(stored)
        if fresh is None:
            raise
        # Applied, refunded or claimed by someone else meanwhile: settle from what is there.
        return _after_lost_claim(services, fresh, line.stripe_payment_intent, actor, why)
    stored = replace(claim, revision=stored.revision + 1)
    intent = stored.stripe_payment_intent or line.stripe_payment_intent
    if not intent:
        logger.error("refund needs a PaymentIntent", extra={"charge_id": stored.id})
        return Settlement(Outcome.REFUND_PENDING, stored, reason=why)
    try:
        result = services.payments.find_refund(payment_intent_id=intent) if resumed else None
        if result is None:
            request = RefundRequest(
                payment_intent_id=intent,
                amount=stored.amount,
                idempotency_key=f"refund:{stored.id}",
                metadata={
                    "account_id": stored.account_id,
                    "charge_id": stored.id,
                    "reason": stored.refund_reason or reason,
                },
            )
            result = services.payments.refund(request)
    except PaymentsUnavailable:
        # Unknown: the claim stays, and the reconciler looks the refund up after the lease.
        logger.warning("refund outcome unknown", extra={"charge_id": stored.id})
        return Settlement(Outcome.REFUND_PENDING, stored, reason=why)
    if result.outcome is PaymentOutcome.FAILED:
        logger.error("Stripe refused a refund", extra={"charge_id": stored.id})
        metrics.add_metric(name="RefundFailed", unit="Count", value=1)
        return Settlement(Outcome.REFUND_PENDING, stored, reason=why)
    done = record_refund(services, stored, result.refund_id, actor)
    return Settlement(Outcome.REFUNDED, done, reason=why)


def _after_lost_claim(
    services: Services,
    fresh: ChargeRecord,
    payment_intent: str | None,
    actor: Actor,
    why: DomainError | None,
) -> Settlement:
    if fresh.status is ChargeStatus.REFUNDED:
        return Settlement(Outcome.REFUNDED, fresh, reason=why)
    if fresh.status is ChargeStatus.SUCCEEDED and fresh.applied:
        return Settlement(Outcome.ALREADY_APPLIED, fresh)
    if fresh.refund_reason is not None:
        return Settlement(Outcome.REFUND_PENDING, fresh, reason=why)
    return settle(services, fresh, payment_intent, actor)
