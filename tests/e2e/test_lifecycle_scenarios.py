"""The help-center scenarios, end to end: `make dev`'s stack over HTTP, the business clock moved
through `/_local/clock`, money checked in the ledger and in localstripe."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from lifecycle.rules.calendar import parse_instant
from local.client import (
    DELETION_SLOT,
    RENEWAL_SLOT,
    Client,
    LocalStack,
    Tenant,
    advance_past,
    advance_to,
    now,
)
from tests.stripe_signing import stripe_signature

STANDARD, STARTER, FROZEN_FEE = 4900, 2900, 900


def prorate(amount: int, at: str, start: str, end: str) -> int:
    """lifecycle.md's proration, in whole seconds, rounded half up."""
    t, s, e = (int(parse_instant(x).timestamp()) for x in (at, start, end))
    t = min(max(t, s), e)
    return (2 * amount * (e - t) + (e - s)) // (2 * (e - s))


def frozen_integration(tenant: Tenant) -> dict:
    """An integration whose freeze took effect at its first renewal (it paid the frozen fee)."""
    created = tenant.create()
    assert tenant.post(f"/v1/integrations/{created['id']}/freeze").status == 200
    advance_past(tenant.stack, created["current_period_end"], RENEWAL_SLOT)
    frozen = tenant.integration(created["id"]).body
    assert frozen["status"] == "frozen", frozen
    return dict(frozen)


def test_a_new_integration_is_charged_its_first_month_up_front(stack: LocalStack, tenant: Tenant):
    created = tenant.create(plan="standard")

    assert created["status"] == "active"
    assert created["next_charge"] == {"amount": STANDARD, "at": created["current_period_end"]}
    (charge,) = tenant.charges()
    assert (charge["amount"], charge["status"], charge["integration_ids"]) == (
        STANDARD,
        "succeeded",
        [created["id"]],
    )
    stripe = Client(f"http://127.0.0.1:{stack.env['STRIPE_PORT']}")
    intent = stripe.get(
        f"/v1/payment_intents/{charge['stripe_payment_intent']}",
        headers={"Authorization": "Bearer sk_test_localstripe"},
    ).body
    assert (intent["amount"], intent["status"]) == (STANDARD, "succeeded")


def test_a_declined_card_creates_nothing(stack: LocalStack):
    tenant = Tenant(stack, card="declined")

    answer = tenant.post(
        "/v1/integrations",
        {"name": "Acme to Shopify", "supplier": "acme", "channel": "shopify", "plan": "starter"},
    )

    assert answer.status == 402, answer.body
    assert answer.body["code"] == "payment_failed"
    assert tenant.get("/v1/integrations").body["items"] == []


def test_freeze_takes_effect_at_the_renewal_which_charges_the_frozen_fee(tenant: Tenant):
    created = tenant.create()

    pending = tenant.post(f"/v1/integrations/{created['id']}/freeze").body
    assert pending["status"] == "freeze_pending"
    assert pending["sync_enabled"] is True
    assert pending["scheduled_change"] == {
        "action": "freeze",
        "effective_at": created["current_period_end"],
    }
    assert pending["next_charge"] == {"amount": FROZEN_FEE, "at": created["current_period_end"]}

    advance_past(tenant.stack, created["current_period_end"], RENEWAL_SLOT)

    frozen = tenant.integration(created["id"]).body
    assert frozen["status"] == "frozen"
    assert frozen["sync_enabled"] is False
    assert frozen["current_period_start"] == created["current_period_end"]
    amounts = sorted(c["amount"] for c in tenant.charges() if c["status"] == "succeeded")
    assert amounts == [FROZEN_FEE, STANDARD]


def test_cancel_waits_for_the_period_end_then_the_integration_is_deleted(tenant: Tenant):
    created = tenant.create()
    end = parse_instant(created["current_period_end"])

    cancelled = tenant.post(
        f"/v1/integrations/{created['id']}/cancel",
        {"reason": "too_expensive", "comment": "Seasonal store."},
    ).body
    assert cancelled["status"] == "cancel_pending"
    assert cancelled["scheduled_change"] == {
        "action": "cancel",
        "effective_at": created["current_period_end"],
    }
    assert cancelled["next_charge"] is None

    advance_to(tenant.stack, end - timedelta(hours=1))
    assert tenant.integration(created["id"]).body["status"] == "cancel_pending"

    advance_past(tenant.stack, end, DELETION_SLOT)

    gone = tenant.integration(created["id"])
    assert gone.status == 404
    assert gone.body["code"] == "not_found"
    tombstones = [
        line
        for line in tenant.get("/v1/account/activity").body["items"]
        if line["details"].get("integration_id") == created["id"]
    ]
    assert [line["type"] for line in tombstones] == ["integration_deleted"]
    assert tombstones[0]["details"]["reason"] == "too_expensive"
    assert [c["amount"] for c in tenant.charges()] == [STANDARD]  # never renewed


def test_uncancel_before_the_period_end_is_free(tenant: Tenant):
    created = tenant.create()
    tenant.post(f"/v1/integrations/{created['id']}/cancel", {"reason": "other"})

    quote = tenant.get(f"/v1/integrations/{created['id']}/reactivation-quote").body
    assert (quote["id"], quote["amount"]) == (None, 0)

    back = tenant.post(f"/v1/integrations/{created['id']}/reactivate", {})

    assert back.status == 200, back.body
    assert back.body["status"] == "active"
    assert back.body["scheduled_change"] is None
    assert back.body["current_period_end"] == created["current_period_end"]
    assert [c["amount"] for c in tenant.charges()] == [STANDARD]


def test_unfreeze_after_the_freeze_took_effect_costs_the_prorated_difference(tenant: Tenant):
    frozen = frozen_integration(tenant)
    advance_to(tenant.stack, parse_instant(frozen["current_period_start"]) + timedelta(days=10))

    quote = tenant.get(f"/v1/integrations/{frozen['id']}/reactivation-quote").body
    at = tenant.stack.api.get("/_local/clock").body["now"]
    expected = prorate(
        STANDARD - FROZEN_FEE, at, frozen["current_period_start"], frozen["current_period_end"]
    )
    assert quote["amount"] == expected > 0
    assert [line["amount"] for line in quote["lines"]] == [expected]

    without_quote = tenant.post(f"/v1/integrations/{frozen['id']}/reactivate", {})
    assert without_quote.status == 409
    assert without_quote.body["code"] == "quote_required"

    paid = tenant.post(f"/v1/integrations/{frozen['id']}/reactivate", {"quote_id": quote["id"]})

    assert paid.status == 200, paid.body
    assert paid.body["status"] == "active"
    assert paid.body["sync_enabled"] is True
    assert paid.body["current_period_end"] == frozen["current_period_end"]
    assert expected in [c["amount"] for c in tenant.charges() if c["status"] == "succeeded"]


def test_an_expired_quote_is_refused_and_nothing_is_charged(tenant: Tenant):
    frozen = frozen_integration(tenant)
    quote = tenant.get(f"/v1/integrations/{frozen['id']}/reactivation-quote").body
    assert quote["amount"] > 0
    charges_before = tenant.charges()

    advance_past(tenant.stack, quote["expires_at"], timedelta(minutes=1))
    refused = tenant.post(f"/v1/integrations/{frozen['id']}/reactivate", {"quote_id": quote["id"]})

    assert refused.status == 409, refused.body
    assert refused.body["code"] == "quote_expired"
    assert tenant.integration(frozen["id"]).body["status"] == "frozen"
    assert tenant.charges() == charges_before


def test_bulk_freeze_answers_for_each_id(tenant: Tenant):
    first, second, cancelled = (tenant.create(name=f"Feed {n}") for n in range(3))
    tenant.post(f"/v1/integrations/{cancelled['id']}/cancel", {"reason": "no_longer_needed"})
    ids = [first["id"], second["id"], cancelled["id"], "int_unknown"]

    answer = tenant.post("/v1/integrations/bulk", {"action": "freeze", "ids": ids})

    assert answer.status == 200, answer.body
    results = {r["id"]: r for r in answer.body["results"]}
    assert results[first["id"]]["ok"] and results[second["id"]]["ok"]
    assert results[first["id"]]["integration"]["status"] == "freeze_pending"
    assert results[cancelled["id"]]["error"]["code"] == "invalid_transition"
    assert results["int_unknown"]["error"]["code"] == "not_found"
    assert tenant.integration(second["id"]).body["status"] == "freeze_pending"
    assert tenant.integration(cancelled["id"]).body["status"] == "cancel_pending"


def test_account_cancel_suspends_at_the_period_end_and_reactivation_is_paid_up_front(
    tenant: Tenant,
):
    standard = tenant.create(plan="standard", name="Acme to Shopify")
    starter = tenant.create(plan="starter", name="Globex to Amazon")

    cancelled = tenant.post("/v1/account/cancel", {"reason": "switched_provider"})
    assert cancelled.status == 200, cancelled.body
    assert cancelled.body["status"] == "cancel_pending"
    assert tenant.integration(standard["id"]).body["scheduled_change"]["action"] == "suspend"

    advance_past(
        tenant.stack,
        max(standard["current_period_end"], starter["current_period_end"]),
        RENEWAL_SLOT,
    )

    assert tenant.get("/v1/account").body["status"] == "disabled"
    for created in (standard, starter):
        suspended = tenant.integration(created["id"]).body
        assert (suspended["status"], suspended["suspension_reason"]) == (
            "suspended",
            "account_cancelled",
        )
    quote = tenant.get("/v1/account/reactivation-quote").body
    assert quote["amount"] == STANDARD + STARTER
    assert len(quote["lines"]) == 2

    back = tenant.post("/v1/account/reactivate", {"quote_id": quote["id"]})

    assert back.status == 200, back.body
    assert back.body["status"] == "active"
    at = tenant.stack.api.get("/_local/clock").body["now"]
    for created in (standard, starter):
        resumed = tenant.integration(created["id"]).body
        assert (resumed["status"], resumed["current_period_start"]) == ("active", at)
    assert STANDARD + STARTER in [c["amount"] for c in tenant.charges()]


def test_a_declined_renewal_is_retried_after_1_3_and_7_days_then_suspended(tenant: Tenant):
    created = tenant.create()
    end = parse_instant(created["current_period_end"])
    tenant.swap_card("declined")

    advance_past(tenant.stack, end, RENEWAL_SLOT)
    past_due = tenant.integration(created["id"]).body
    assert (past_due["status"], past_due["billing_state"]) == ("active", "past_due")
    assert past_due["sync_enabled"] is True
    assert past_due["next_charge"]["at"] == (end + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    for days in (1, 3):
        advance_past(tenant.stack, end + timedelta(days=days), RENEWAL_SLOT)
        assert tenant.integration(created["id"]).body["billing_state"] == "past_due"

    advance_past(tenant.stack, end + timedelta(days=7), RENEWAL_SLOT)

    suspended = tenant.integration(created["id"]).body
    assert (suspended["status"], suspended["suspension_reason"]) == ("suspended", "non_payment")
    assert suspended["sync_enabled"] is False
    history = tenant.get(f"/v1/integrations/{created['id']}/history").body["items"]
    failures = [line for line in history if line["type"] == "payment_failed"]
    assert [line["details"]["attempt"] for line in failures] == [1, 2, 3, 4]
    assert [e["detail-type"] for e in tenant.events()][-2:] == [
        "PaymentFailed",
        "IntegrationSuspended",
    ]


def test_a_declined_renewal_paid_at_a_retry_renews_the_period(tenant: Tenant):
    created = tenant.create()
    end = parse_instant(created["current_period_end"])
    tenant.swap_card("declined")
    advance_past(tenant.stack, end, RENEWAL_SLOT)
    assert tenant.integration(created["id"]).body["billing_state"] == "past_due"

    tenant.swap_card("ok")
    advance_past(tenant.stack, end + timedelta(days=1), RENEWAL_SLOT)

    renewed = tenant.integration(created["id"]).body
    assert (renewed["status"], renewed["billing_state"]) == ("active", "ok")
    assert renewed["current_period_start"] == created["current_period_end"]
    paid = [c["amount"] for c in tenant.charges() if c["status"] == "succeeded"]
    assert paid == [STANDARD, STANDARD]


def test_a_webhook_with_a_bad_signature_is_refused(stack: LocalStack):
    secret = (stack.data_dir / "stripe-webhook-secret").read_text().strip()
    payload = json.dumps(
        {
            "id": "evt_e2e_unknown_type",
            "object": "event",
            "type": "customer.created",
            "created": int(time.time()),
            "data": {"object": {"id": "cus_e2e", "object": "customer"}},
        }
    ).encode()

    forged = stack.webhook.post(
        "/", raw=payload, headers={"Stripe-Signature": stripe_signature(payload, "whsec_not_ours")}
    )
    unsigned = stack.webhook.post("/", raw=payload)
    genuine = stack.webhook.post(
        "/", raw=payload, headers={"Stripe-Signature": stripe_signature(payload, secret)}
    )

    assert forged.status == 400
    assert unsigned.status == 400
    assert genuine.status == 200  # an event type we do not handle: acknowledged, ignored


def test_every_state_change_publishes_its_domain_event_once_in_order(tenant: Tenant):
    created = tenant.create()
    tenant.post(f"/v1/integrations/{created['id']}/freeze")
    advance_past(tenant.stack, created["current_period_end"], RENEWAL_SLOT)
    tenant.post(f"/v1/integrations/{created['id']}/cancel", {"reason": "technical_issues"})
    tenant.post(f"/v1/integrations/{created['id']}/reactivate", {})

    published = tenant.events()
    # The ledger's ChargeSucceeded (one per paid charge: the create, the renewal) is written in
    # the transaction of the change it paid for; its place among that change's events is free.
    events = [e for e in published if e["detail-type"] != "ChargeSucceeded"]
    receipts = [e for e in published if e["detail-type"] == "ChargeSucceeded"]

    # The tenant's account was opened by a sign-up, then given a card (Checkout's webhook).
    assert [e["detail-type"] for e in events[:2]] == ["AccountCreated", "PaymentMethodUpdated"]
    events = events[2:]
    assert [e["detail-type"] for e in events] == [
        "IntegrationCreated",
        "FreezeScheduled",
        "IntegrationFrozen",
        "IntegrationRenewed",
        "CancelScheduled",
        "CancelRevoked",
    ]
    assert sorted(e["detail"]["amount"] for e in receipts) == [900, 4900]
    assert len({e["id"] for e in published}) == len(published)
    for event in published:
        assert event["source"] == "integrations.lifecycle"
        assert event["detail"]["account_id"] == tenant.account_id
    for event in [*events, *receipts]:
        assert event["detail"]["integration_id"] == created["id"]
    frozen = events[2]["detail"]
    assert frozen["sync_enabled"] is False
    assert now(tenant.stack) >= parse_instant(created["current_period_end"])
