"""The ledger makes charging exactly-once, against DynamoDB Local and a real localstripe that
(like localstripe itself) ignores idempotency keys: the ledger alone prevents a second charge."""

from __future__ import annotations

import pytest

from lifecycle.clock import FixedClock
from lifecycle.payments.port import PaymentOutcome, PaymentRequest
from lifecycle.payments.stripe_adapter import StripePayments
from lifecycle.rules.catalog import DEFAULT_CATALOG
from lifecycle.rules.errors import PaymentFailed
from lifecycle.rules.integration import NewIntegration, create
from lifecycle.rules.ledger import ChargeStatus
from lifecycle.rules.model import user
from lifecycle.rules.paid import CreatePaid
from lifecycle.usecases import charging, leases
from lifecycle.usecases.charging import Outcome, Purchase, collect, settle
from lifecycle.usecases.services import Services
from local.localstripe import SECRET_KEY, count_payment_intents, create_customer_with_card
from tests.factories import T0, add_account

pytestmark = pytest.mark.integration


class Crash(Exception):
    """The process dies between the provider's answer and the ledger update."""


def setup(store, localstripe_base, card="ok"):
    customer = create_customer_with_card(localstripe_base, card)
    account = add_account(store, "acc_1", stripe_customer_id=customer)
    services = Services(
        store=store,
        payments=StripePayments(SECRET_KEY, api_base=localstripe_base),
        clock=FixedClock(T0),
        catalog=DEFAULT_CATALOG,
    )
    decision = create(
        "int_1",
        account,
        NewIntegration("Acme to Shopify", "acme", "shopify", "standard"),
        T0,
        user("u"),
        DEFAULT_CATALOG,
    )
    action = CreatePaid("int_1", "Acme to Shopify", "acme", "shopify", "standard")
    purchase = Purchase(decision.charge, action, request_ref=decision.charge.ledger)
    return services, account, customer, purchase


def pay(services, account, purchase):
    collected = collect(services, account, purchase, T0)
    if collected.already_applied:
        return Outcome.ALREADY_APPLIED
    return settle(services, collected.line, collected.payment_intent, user("u")).outcome


def test_a_successful_charge_is_one_payment_intent_and_one_applied_ledger_line(
    store, localstripe_base
):
    services, account, customer, purchase = setup(store, localstripe_base)
    assert pay(services, account, purchase) is Outcome.APPLIED
    assert count_payment_intents(localstripe_base, customer) == 1
    (line,), _ = store.list_charges("acc_1")
    assert (line.amount, line.status, line.applied) == (4900, ChargeStatus.SUCCEEDED, True)
    assert line.stripe_payment_intent.startswith("pi_")
    assert store.get_integration("acc_1", "int_1") is not None


def test_a_declined_card_is_a_failed_line_and_nothing_is_applied(store, localstripe_base):
    services, account, _customer, purchase = setup(store, localstripe_base, card="declined")
    with pytest.raises(PaymentFailed):
        collect(services, account, purchase, T0)
    (line,), _ = store.list_charges("acc_1")
    assert line.status is ChargeStatus.FAILED
    assert store.get_integration("acc_1", "int_1") is None


def test_a_retry_after_a_crash_between_the_charge_and_the_ledger_update_charges_once(
    store, localstripe_base, monkeypatch
):
    services, account, customer, purchase = setup(store, localstripe_base)
    real_outcome = charging._outcome

    def crash_after_stripe_answered(*args, **kwargs):
        raise Crash

    monkeypatch.setattr(charging, "_outcome", crash_after_stripe_answered)
    with pytest.raises(Crash):
        collect(services, account, purchase, T0)
    assert count_payment_intents(localstripe_base, customer) == 1
    (line,), _ = store.list_charges("acc_1")
    assert line.status is ChargeStatus.PENDING  # the ledger did not hear back

    monkeypatch.setattr(charging, "_outcome", real_outcome)
    monkeypatch.setattr(leases, "LEASE_SECONDS", 0)
    assert pay(services, account, purchase) is Outcome.APPLIED
    assert count_payment_intents(localstripe_base, customer) == 1  # reconciled, not recharged
    (line,), _ = store.list_charges("acc_1")
    assert (line.status, line.applied) == (ChargeStatus.SUCCEEDED, True)
    assert store.get_integration("acc_1", "int_1") is not None


def test_a_retry_after_success_and_apply_neither_charges_nor_applies_again(store, localstripe_base):
    services, account, customer, purchase = setup(store, localstripe_base)
    assert pay(services, account, purchase) is Outcome.APPLIED
    again = collect(services, account, purchase, T0)
    assert again.already_applied
    assert count_payment_intents(localstripe_base, customer) == 1


def test_localstripe_here_really_ignores_idempotency_keys(localstripe_base):
    """Guard for the tests above: if the fake deduplicated keys, they would prove nothing."""
    customer = create_customer_with_card(localstripe_base, "ok")
    payments = StripePayments(SECRET_KEY, api_base=localstripe_base)
    for _ in range(2):
        result = payments.charge(
            PaymentRequest(
                customer_id=customer,
                amount=900,
                currency="usd",
                description="x",
                idempotency_key="same-key",
                metadata={"charge_id": "ch_x"},
            )
        )
        assert result.outcome is PaymentOutcome.SUCCEEDED
    assert count_payment_intents(localstripe_base, customer) == 2


def test_the_webhook_applying_first_leaves_the_caller_a_success_and_the_action_done_once(
    store, localstripe_base
):
    """Stripe's webhook can land between the charge and the caller's commit: whichever settles
    first applies it; the other finds it applied; nothing is applied twice."""
    from lifecycle.usecases import webhooks  # noqa: PLC0415

    services, account, customer, purchase = setup(store, localstripe_base)
    collected = collect(services, account, purchase, T0)
    line = collected.line
    event = {
        "id": "evt_first",
        "type": "payment_intent.succeeded",
        "data": {
            "object": {
                "id": collected.payment_intent,
                "object": "payment_intent",
                "amount": 4900,
                "currency": "usd",
                "customer": customer,
                "metadata": {"account_id": line.account_id, "charge_id": line.id},
            }
        },
    }
    assert webhooks.handle(services, event) == "succeeded:applied"

    settlement = settle(services, line, collected.payment_intent, user("u"))
    assert settlement.outcome is Outcome.ALREADY_APPLIED

    assert count_payment_intents(localstripe_base, customer) == 1
    (stored,), _ = store.list_charges("acc_1")
    assert (stored.status, stored.applied) == (ChargeStatus.SUCCEEDED, True)
    assert [h.type for h in store.history("acc_1", "int_1")] == ["integration_created"]
