"""Durable exactly-once charging: the ledger line first, the provider second, the state last;
and a paid action that can no longer be applied is refunded, never kept.

1. A pending ledger line is written conditionally, keyed by the thing bought (a change of one
   subject from the state it is in: `rules.paid.ledger_key`), together with checks that the
   subject is still as the quote saw it. A second request for the same change finds the line
   and is refused before Stripe; a retry of the same request reconciles with it.
2. The provider is called with an idempotency key and the line's id in the metadata.
3. `settle` applies what was paid for to the state as it is *now* (`rules.paid.apply_paid`),
   in one transaction with the line, or refunds the charge in full when it no longer applies.

The request, Stripe's webhook and the sweep's reconciler all settle through the same function,
each conditionally on the line's revision, so whichever learns of the payment first settles
it and the others find it settled.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from lifecycle.ids import new_id
from lifecycle.observability import logger, metrics, record_events
from lifecycle.payments.port import PaymentOutcome, PaymentResult, PaymentsUnavailable
from lifecycle.rules.effects import history_entry
from lifecycle.rules.errors import (
    Conflict,
    DomainError,
    PaymentFailed,
    PaymentPending,
    QuoteStale,
)
from lifecycle.rules.ledger import NOT_APPLIED, ChargeRecord, ChargeStatus, receipt_number
from lifecycle.rules.model import (
    Account,
    Actor,
    ChargeKind,
    ChargeRequest,
    Decision,
    DetailType,
    DomainEvent,
    Integration,
)
from lifecycle.rules.money import format_amount
from lifecycle.rules.paid import (
    AccountReactivationPaid,
    Applied,
    NotApplicable,
    PaidAction,
    apply_paid,
    subject_ids,
)
from lifecycle.rules.receipts import charge_succeeded, receipt_items
from lifecycle.store.repository import Expect, GuardTaken, SubjectChanged
from lifecycle.usecases.services import Services

# How long the worker that wrote a pending line owns the provider call (wall clock): longer
# than the adapter's worst case (three attempts of 10 s) so that two workers never both call.
LEASE_SECONDS = 60
_ATTEMPTS = 5
# Charges of one account racing for its next receipt number: each lost race costs a re-read,
# never an attempt (20 concurrent charges of one account settle without a 409).
_RECEIPT_RACES = 50


def wall_clock() -> int:
    """Epoch seconds of the wall clock (leases are about real time, not the business clock)."""
    return int(time.time())


def _lease() -> int:
    return wall_clock() + LEASE_SECONDS


@dataclass(frozen=True, slots=True)
class Purchase:
    """What a request buys: the charge, the paid action, the request that may drive its ledger
    line (a quote id, or the ledger key when only retries share it), and what the subject must
    still be when the line is written (the quote's versions)."""

    charge: ChargeRequest
    action: PaidAction
    request_ref: str
    expect: tuple[Expect, ...] = ()


@dataclass(frozen=True, slots=True)
class Collected:
    """A charge that succeeded: `line` as stored, `payment_intent` the succeeded one."""

    line: ChargeRecord
    payment_intent: str | None

    @property
    def already_applied(self) -> bool:
        return self.line.status is ChargeStatus.SUCCEEDED and self.line.applied


class Outcome(StrEnum):
    APPLIED = "applied"  # by this call
    ALREADY_APPLIED = "already_applied"  # by another (a retry, the webhook, the reconciler)
    REFUNDED = "refunded"  # it no longer applied: refunded in full
    REFUND_PENDING = "refund_pending"  # refunded, not yet confirmed (the reconciler finishes)


@dataclass(frozen=True, slots=True)
class Settlement:
    outcome: Outcome
    line: ChargeRecord
    applied: Applied | None = None
    # Why the paid action did not apply (refunded outcomes).
    reason: DomainError | None = None

    def raise_if_refunded(self) -> None:
        """The caller's error when its payment was refunded: why, and that it was refunded."""
        if self.outcome not in (Outcome.REFUNDED, Outcome.REFUND_PENDING):
            return
        reason = self.reason or QuoteStale("What this payment was for changed meanwhile.")
        amount = format_amount(self.line.amount, self.line.currency)
        done = "was" if self.outcome is Outcome.REFUNDED else "is being"
        raise type(reason)(
            f"{reason.detail} Your payment of {amount} {done} refunded in full; nothing was"
            " changed.",
            **reason.extra,
            refunded=True,
            charge_id=self.line.id,
        )


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
        lease_until=_lease(),
    )
    try:
        services.store.begin_charge(record, purchase.expect)
    except SubjectChanged:
        raise QuoteStale(
            "Something this quote was priced from has changed since. Nothing was charged; ask"
            " for a new quote."
        ) from None
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
        return _retry_failed(services, account, existing, purchase, now)
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
    if wall_clock() < existing.lease_until:
        raise PaymentPending(
            "This payment is being collected right now. Retry in a moment: you will not be"
            " charged twice.",
            charge_id=existing.id,
        )
    # The worker that wrote the line died before reaching the provider: take it over.
    taken = replace(existing, lease_until=_lease(), updated_at=now)
    services.store.save_charge(existing, taken)
    return replace(taken, revision=existing.revision + 1)


def _retry_failed(
    services: Services,
    account: Account,
    existing: ChargeRecord,
    purchase: Purchase,
    now: datetime,
) -> ChargeRecord:
    request = purchase.charge
    if request.kind is ChargeKind.RENEWAL and existing.attempt >= request.attempt:
        raise PaymentFailed(existing.failure_message or "The renewal charge was declined.")
    # The merchant tries again (maybe with another card, maybe with a new quote for the same
    # change): a new attempt on the same line, taken by one request only.
    retry = replace(
        existing,
        status=ChargeStatus.PENDING,
        attempt=max(existing.attempt + 1, request.attempt),
        amount=request.amount,
        description=request.description,
        action=purchase.action,
        request_ref=purchase.request_ref,
        customer_id=account.stripe_customer_id,
        failure_message=None,
        updated_at=now,
        lease_until=_lease(),
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
        raise QuoteStale(
            "Something this quote was priced from has changed since. Nothing was charged; ask"
            " for a new quote."
        ) from None
    except GuardTaken:
        raise Conflict(
            "Another request is paying for this change right now. Nothing was charged."
        ) from None
    return fresh


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
    result = services.payments.charge(
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
    return _outcome(services, record, result, now)


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


# ---------------------------------------------------------------------------- settling


def settle(
    services: Services,
    line: ChargeRecord,
    payment_intent: str | None,
    actor: Actor,
    *,
    state: tuple[Account, dict[str, Integration]] | None = None,
) -> Settlement:
    """Apply what a succeeded charge paid for, to the state as it is now, in one transaction
    with the ledger line; or refund it in full when it no longer applies. `line` is the line as
    stored; `payment_intent` the PaymentIntent that succeeded. `state` (account, integrations)
    saves a read when the caller has just loaded it."""
    store = services.store
    attempts = races = 0
    while attempts < _ATTEMPTS:
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
            if (
                fresh.revision == line.revision
                and races < _RECEIPT_RACES
                and store.receipts_issued(line.account_id) != issued
            ):
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
    if resumed and wall_clock() < stored.lease_until:
        return Settlement(Outcome.REFUND_PENDING, stored, reason=why)  # someone is on it
    # A new claim, or one whose claimant died half-way taken over: one claimant wins.
    claim = (
        replace(stored, lease_until=_lease(), updated_at=services.clock.now())
        if resumed
        else replace(line, refund_reason=reason, applied=False, lease_until=_lease())
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
            result = services.payments.refund(
                payment_intent_id=intent,
                amount=stored.amount,
                idempotency_key=f"refund:{stored.id}",
                metadata={
                    "account_id": stored.account_id,
                    "charge_id": stored.id,
                    "reason": stored.refund_reason or reason,
                },
            )
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


def record_refund(
    services: Services, line: ChargeRecord, refund_id: str | None, actor: Actor
) -> ChargeRecord:
    """The line `refunded` (a refund we made, or one Stripe reports), with one history line per
    integration still there, one account activity line and one `ChargeRefunded` event, all
    once: whoever moves the line to `refunded` writes them, conditionally on its revision."""
    store = services.store
    for _ in range(_ATTEMPTS):
        if line.status is ChargeStatus.REFUNDED:
            return line
        now = services.clock.now()
        reason = line.refund_reason or "refunded_at_stripe"
        after = replace(
            line,
            status=ChargeStatus.REFUNDED,
            refund_reason=reason,
            refund_id=refund_id or line.refund_id,
            lease_until=0,
            updated_at=now,
        )
        details = {"charge_id": line.id, "amount": line.amount, "reason": reason}
        present = [
            i for i in line.integration_ids if store.get_integration(line.account_id, i) is not None
        ]
        event = DomainEvent(
            detail_type=DetailType.CHARGE_REFUNDED,
            account_id=line.account_id,
            at=now,
            integration_id=line.integration_ids[0] if line.integration_ids else None,
            data={**details, "currency": line.currency, "applied": line.applied},
        )
        try:
            store.commit(
                extra=[
                    store.charge_write(line, after),
                    *store.ledger_effects(
                        line,
                        "refunded",
                        history=[
                            (i, history_entry("charge_refunded", actor, now, details))
                            for i in present
                        ],
                        activity=history_entry(
                            "charge_refunded",
                            actor,
                            now,
                            {**details, "integration_ids": list(line.integration_ids)},
                        ),
                        events=[event],
                    ),
                ]
            )
        except Conflict:
            fresh = store.reload_charge(line)
            if fresh is None:
                raise
            line = fresh
            continue
        record_events([event])
        return replace(after, revision=line.revision + 1)
    raise Conflict("The ledger line kept changing while its refund was recorded.")


# ---------------------------------------------------------------------------- reconciling


def reconcile(
    services: Services, account_id: str, charge_id: str, ledger_key: str | None = None
) -> str:
    """Settle one ledger line that may hold money not yet applied or refunded (the renewal
    sweep's reconciler): a payment whose request died after Stripe answered is applied, or
    refunded when it no longer applies; a refund left half-way is finished. Lines still owned
    by a live request (its lease) are left to it."""
    store = services.store
    line = store.get_charge(account_id, charge_id, ledger_key)
    if line is None or not line.unsettled:
        return "settled"
    if wall_clock() < line.lease_until:
        return "in_flight"
    if line.status is ChargeStatus.PENDING:
        customer = line.customer_id
        if not customer:
            account = store.get_account(account_id)
            customer = account.stripe_customer_id if account else None
        found = services.payments.find(customer_id=customer or "", charge_id=line.id)
        if found is None:
            # The request died before reaching Stripe: nothing was taken.
            _abandon(services, line, "The payment was not completed. Nothing was charged.")
            return "abandoned"
        if found.outcome is PaymentOutcome.FAILED:
            _abandon(services, line, found.failure_message or "The card was declined.")
            return "failed"
        if found.outcome is PaymentOutcome.PENDING:
            return "pending"
        return settle(services, line, found.payment_intent_id, _RECONCILER).outcome.value
    return settle(services, line, line.stripe_payment_intent, _RECONCILER).outcome.value


_RECONCILER = Actor("system", "reconciler")


def _abandon(services: Services, line: ChargeRecord, message: str) -> None:
    # A lost race: settled meanwhile (Stripe's webhook), nothing to do.
    with contextlib.suppress(Conflict):
        services.store.save_charge(
            line,
            replace(
                line,
                status=ChargeStatus.FAILED,
                failure_message=message,
                lease_until=0,
                updated_at=services.clock.now(),
            ),
        )
