"""What users can do while a renewal payment is being retried (lifecycle.md, "While an
integration is past_due"), and the account cases the first rulebook left silent: through the
real handlers, the renewal use case and DynamoDB Local."""

from __future__ import annotations

import pytest

from lifecycle.rules.ledger import ChargeStatus
from lifecycle.rules.model import BillingState, Status, SuspensionReason
from lifecycle.rules.renewal import DueKind
from lifecycle.usecases import renewals
from local.inprocess import invoke
from tests.factories import add_account
from tests.store_reads import outbox_events

pytestmark = pytest.mark.integration

BODY = {"name": "Feed", "supplier": "s", "channel": "c", "plan": "standard"}


@pytest.fixture
def past_due(services, payments, clock):
    """An integration whose renewal was declined once: past due, retried in a day."""
    add_account(services.store)
    status, created = invoke("POST", "/v1/integrations", body=BODY)
    assert status == 201
    subject = services.store.get_integration("acc_1", created["id"])
    clock.set(subject.current_period_end)
    payments.cards["cus_acc_1"] = "declined"
    assert renewals.renew(services, "acc_1", subject.id).result == "past_due"
    return services.store.get_integration("acc_1", subject.id)


def renewal_line(services, integration_id):
    lines, _ = services.store.list_charges("acc_1")
    return next(c for c in lines if c.kind == "renewal" and integration_id in c.integration_ids)


def test_cancel_while_past_due_deletes_at_once_and_writes_the_unpaid_charge_off(
    services, past_due, clock
):
    status, body = invoke(
        "POST", "/v1/integrations/{id}/cancel", {"id": past_due.id}, body={"reason": "other"}
    )
    assert (status, body["status"]) == (200, "deleted")
    assert invoke("GET", "/v1/integrations/{id}", {"id": past_due.id})[0] == 404
    assert renewal_line(services, past_due.id).status is ChargeStatus.WRITTEN_OFF
    clock.set(past_due.next_attempt_at)
    assert list(services.store.due(DueKind.RENEWAL, clock.now())) == []  # no retry left
    tombstones = [h for h in services.store.activity("acc_1") if h.type == "integration_deleted"]
    assert [t.details["reason"] for t in tombstones] == ["other"]


def test_reactivate_while_past_due_is_refused(past_due):
    status, body = invoke("POST", "/v1/integrations/{id}/reactivate", {"id": past_due.id})
    assert (status, body["code"], body["billing_state"]) == (409, "invalid_transition", "past_due")


def test_freeze_while_past_due_reprices_the_retry_and_a_paid_retry_makes_it_frozen(
    services, payments, past_due, clock
):
    status, body = invoke("POST", "/v1/integrations/{id}/freeze", {"id": past_due.id})
    assert (status, body["status"], body["billing_state"]) == (200, "freeze_pending", "past_due")
    payments.cards["cus_acc_1"] = "ok"
    clock.set(past_due.next_attempt_at)
    assert renewals.renew(services, "acc_1", past_due.id).result == "renewed"
    after = services.store.get_integration("acc_1", past_due.id)
    assert (after.status, after.billing_state) == (Status.FROZEN, BillingState.OK)
    assert after.current_period_start == past_due.current_period_end
    line = renewal_line(services, past_due.id)
    assert (line.status, line.amount) == (ChargeStatus.SUCCEEDED, 900)


def test_cancelling_the_account_suspends_a_past_due_integration_at_once(services, past_due):
    status, account = invoke("POST", "/v1/account/cancel", body={"reason": "too_expensive"})
    assert (status, account["status"]) == (200, "disabled")  # nothing billable is left
    after = services.store.get_integration("acc_1", past_due.id)
    assert (after.status, after.suspension_reason, after.billing_state) == (
        Status.SUSPENDED,
        SuspensionReason.ACCOUNT_CANCELLED,
        BillingState.OK,
    )
    assert renewal_line(services, past_due.id).status is ChargeStatus.WRITTEN_OFF
    events = sorted(e["detail-type"] for e in outbox_events(services.store, "acc_1"))
    for expected in ("AccountCancelScheduled", "AccountDisabled", "IntegrationSuspended"):
        assert events.count(expected) == 1
    # A repeated account cancel is a no-op success.
    again_status, again = invoke("POST", "/v1/account/cancel", body={"reason": "other"})
    assert (again_status, again["status"]) == (200, "disabled")
    assert sorted(e["detail-type"] for e in outbox_events(services.store, "acc_1")) == events


def test_an_uncancel_inside_a_disabled_account_is_refused(services, payments):
    add_account(services.store)
    status, created = invoke("POST", "/v1/integrations", body=BODY)
    invoke("POST", "/v1/integrations/{id}/cancel", {"id": created["id"]}, body={"reason": "other"})
    status, account = invoke("POST", "/v1/account/cancel", body={"reason": "other"})
    assert (status, account["status"]) == (200, "disabled")  # only a cancel_pending one left
    status, body = invoke("POST", "/v1/integrations/{id}/reactivate", {"id": created["id"]})
    assert (status, body["code"]) == (409, "account_not_active")
    found = services.store.get_integration("acc_1", created["id"])
    assert found.status is Status.CANCEL_PENDING
