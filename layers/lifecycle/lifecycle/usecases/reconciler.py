"""The renewal sweep's reconciler: a ledger line that may hold money not yet applied or refunded is
settled once its lease is over (applied, refunded, or marked failed when Stripe never saw it)."""

from __future__ import annotations

import contextlib
from dataclasses import replace

from lifecycle.payments.port import PaymentOutcome
from lifecycle.rules.errors import (
    Conflict,
)
from lifecycle.rules.ledger import ChargeRecord, ChargeStatus
from lifecycle.rules.model import (
    Actor,
)
from lifecycle.usecases import leases
from lifecycle.usecases.services import Services
from lifecycle.usecases.settling import settle

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
    if leases.wall_clock() < line.lease_until:
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
