"""Faults at the store and payments boundaries: every case ends with the state and the ledger
consistent, nothing charged twice, nothing applied without payment, and the caller told a
retryable (409/503) or final (402) error."""

from __future__ import annotations

import uuid

import pytest

from lifecycle.payments.port import (
    PaymentOutcome,
    PaymentRequest,
    PaymentResult,
    PaymentsUnavailable,
)
from lifecycle.rules.ledger import ChargeStatus
from lifecycle.rules.model import Status
from lifecycle.usecases import leases
from local.inprocess import invoke
from tests.factories import add_account
from tests.reliability.faults import install, throttled, timeout, transaction_conflict
from tests.store_reads import outbox_events

pytestmark = pytest.mark.integration

ID = "/v1/integrations/{id}"
BODY = {"name": "Feed", "supplier": "s", "channel": "c", "plan": "standard"}


@pytest.fixture
def account(services):
    return add_account(services.store)


@pytest.fixture
def integration_id(account) -> str:
    status, body = invoke("POST", "/v1/integrations", body=BODY)
    assert status == 201
    return body["id"]


def consistent(services, payments):
    """The ledger matches the provider and every applied charge has its integration."""
    lines, _ = services.store.list_charges("acc_1", limit=100)
    succeeded = [line for line in lines if line.status is ChargeStatus.SUCCEEDED]
    assert len(payments.succeeded) == len(succeeded), "charged without a ledger line, or twice"
    for line in succeeded:
        for integration_id in line.integration_ids:
            assert line.applied == (
                services.store.get_integration("acc_1", integration_id) is not None
            )
    return lines


@pytest.mark.parametrize(
    ("operation", "error", "status", "code"),
    [
        ("transact_write_items", throttled("TransactWriteItems"), 503, "service_unavailable"),
        ("transact_write_items", transaction_conflict(), 409, "conflict"),
        ("transact_write_items", timeout(), 503, "service_unavailable"),
        ("batch_get_item", throttled("BatchGetItem"), 503, "service_unavailable"),
    ],
    ids=["throttled-write", "transaction-conflict", "write-timeout", "throttled-read"],
)
def test_a_store_fault_during_freeze_is_retryable_and_leaves_nothing_half_done(
    services, payments, integration_id, operation, error, status, code
):
    faulty = install(services.store)
    faulty.fail(operation, error)
    got, body = invoke("POST", f"{ID}/freeze", {"id": integration_id})
    assert (got, body["code"]) == (status, code)
    subject = services.store.get_integration("acc_1", integration_id)
    assert subject.status is Status.ACTIVE
    assert [h.type for h in services.store.history("acc_1", integration_id)] == [
        "integration_created"
    ]
    got, body = invoke("POST", f"{ID}/freeze", {"id": integration_id})
    assert (got, body["status"]) == (200, "freeze_pending")
    # The create's receipt event first (the outbox reads in key order: `ch_` before `int_`).
    assert [e["detail-type"] for e in outbox_events(services.store, "acc_1")] == [
        "ChargeSucceeded",
        "IntegrationCreated",
        "FreezeScheduled",
    ]


def test_a_write_that_succeeded_but_whose_answer_was_lost_is_not_applied_twice(
    services, payments, integration_id
):
    faulty = install(services.store)
    faulty.fail("transact_write_items", timeout(), after=True)
    got, body = invoke("POST", f"{ID}/freeze", {"id": integration_id})
    assert (got, body["code"]) == (503, "service_unavailable")
    got, body = invoke("POST", f"{ID}/freeze", {"id": integration_id})
    assert (got, body["status"]) == (200, "freeze_pending")  # already holds: a no-op success
    # The create's receipt event first (the outbox reads in key order: `ch_` before `int_`).
    assert [e["detail-type"] for e in outbox_events(services.store, "acc_1")] == [
        "ChargeSucceeded",
        "IntegrationCreated",
        "FreezeScheduled",
    ]


def test_a_crash_between_the_charge_and_the_commit_is_resolved_by_the_retry(
    services, payments, account
):
    """Stripe took the money, then the write that applies the create failed: the retry with the
    same Idempotency-Key finds the ledger line, reconciles with the provider, applies once."""
    faulty = install(services.store)
    key = {"idempotency-key": str(uuid.uuid4())}
    # begin_charge (the ledger line, its own guard: one conditional PutItem) passes; the
    # commit with the paid decision (the first and only transaction) fails.
    faulty.fail("transact_write_items", throttled("TransactWriteItems"), times=0)
    calls = {"n": 0}
    original = faulty.__getattr__("transact_write_items")

    def first_transaction_fails(**kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise throttled("TransactWriteItems")
        return original(**kwargs)

    faulty.transact_write_items = first_transaction_fails
    got, body = invoke("POST", "/v1/integrations", body=BODY, headers=key)
    assert (got, body["code"]) == (503, "service_unavailable")
    assert faulty.calls["put_item"] == 1  # the ledger line, written alone before Stripe
    assert len(payments.succeeded) == 1
    assert services.store.list_integrations("acc_1").integrations == ()
    (line,), _ = services.store.list_charges("acc_1")
    assert line.status is ChargeStatus.PENDING  # never applied without payment, nor lost

    got, body = invoke("POST", "/v1/integrations", body=BODY, headers=key)
    assert got == 201, body
    assert len(payments.succeeded) == 1  # reconciled, not charged again
    lines = consistent(services, payments)
    assert [(line.status, line.applied) for line in lines] == [(ChargeStatus.SUCCEEDED, True)]
    assert len(services.store.list_integrations("acc_1").integrations) == 1


def test_a_payment_outage_is_503_nothing_applied_and_the_later_retry_charges_once(
    services, payments, account, monkeypatch
):
    key = {"idempotency-key": str(uuid.uuid4())}
    payments.cards["cus_acc_1"] = "unavailable"  # timeout / 429 / 5xx: outcome unknown
    got, body = invoke("POST", "/v1/integrations", body=BODY, headers=key)
    assert (got, body["code"]) == (503, "payment_pending")
    assert services.store.list_integrations("acc_1").integrations == ()
    payments.cards["cus_acc_1"] = "ok"
    # Within the lease another worker may still be talking to the provider: wait, never double.
    got, body = invoke("POST", "/v1/integrations", body=BODY, headers=key)
    assert (got, body["code"]) == (503, "payment_pending")
    assert payments.succeeded == []
    monkeypatch.setattr(leases.time, "time", lambda: 10**10)  # the lease has run out
    got, body = invoke("POST", "/v1/integrations", body=BODY, headers=key)
    assert got == 201, body
    consistent(services, payments)
    assert len(payments.succeeded) == 1


def test_a_declined_card_is_final_and_changes_nothing(services, payments, integration_id):
    payments.cards["cus_acc_1"] = "declined"
    got, body = invoke("POST", "/v1/integrations", body=BODY)
    assert (got, body["code"]) == (402, "payment_failed")
    consistent(services, payments)
    assert len(services.store.list_integrations("acc_1").integrations) == 1


def test_provider_unreachable_while_reconciling_is_503(services, payments, account, monkeypatch):
    key = {"idempotency-key": str(uuid.uuid4())}
    payments.cards["cus_acc_1"] = "unavailable"
    invoke("POST", "/v1/integrations", body=BODY, headers=key)

    def unreachable(**kwargs):
        raise PaymentsUnavailable("APIConnectionError")

    monkeypatch.setattr(payments, "find", unreachable)
    got, body = invoke("POST", "/v1/integrations", body=BODY, headers=key)
    assert (got, body["code"]) == (503, "payment_pending")
    assert services.store.list_integrations("acc_1").integrations == ()


def test_a_late_answer_from_the_provider_is_reconciled_not_recharged(
    services, payments, account, monkeypatch
):
    """The provider charged, but its answer timed out: the retry finds the PaymentIntent."""
    key = {"idempotency-key": str(uuid.uuid4())}
    real_charge = payments.charge

    def charged_but_answer_lost(request: PaymentRequest) -> PaymentResult:
        real_charge(request)
        return PaymentResult(PaymentOutcome.PENDING)

    monkeypatch.setattr(payments, "charge", charged_but_answer_lost)
    got, body = invoke("POST", "/v1/integrations", body=BODY, headers=key)
    assert (got, body["code"]) == (503, "payment_pending")
    monkeypatch.setattr(payments, "charge", real_charge)
    got, body = invoke("POST", "/v1/integrations", body=BODY, headers=key)
    assert got == 201, body
    assert len(payments.succeeded) == 1
    consistent(services, payments)
