"""The Stripe webhook function URL through its real handler, against DynamoDB Local."""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import stripe

from functions.stripe_webhook.app import lambda_handler
from lifecycle.payments.port import PaymentRequest
from lifecycle.rules.ledger import ChargeStatus
from lifecycle.rules.model import AccountStatus, BillingState, Status
from lifecycle.rules.renewal import decide_renewal
from local.events import LambdaContext
from tests import bad_inputs
from tests.factories import add_account, post_integration
from tests.store_reads import outbox_events, table_items

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parents[3] / "events" / "stripe"
OLD_SECRET, SECRET = "whsec_previous_4b1d9", "whsec_current_8c2e7"
_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def _secrets(monkeypatch):
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS", f"{OLD_SECRET},{SECRET}")


def stripe_event(
    kind: str,
    *,
    charge_id: str,
    pi: str,
    account_id: str = "acc_1",
    amount: int = 2900,
    customer: str = "cus_acc_1",
    **fields,
) -> dict:
    """A Stripe event as Stripe sends it for a charge of `amount` cents to `customer` (by
    default what the `waiting` create is: 2900 to cus_acc_1)."""
    event = json.loads((SAMPLES / f"{kind}.json").read_text())
    event["id"] = f"evt_test_{next(_ids)}"
    obj = event["data"]["object"]
    metadata = {"account_id": account_id, "charge_id": charge_id, "kind": "create"}
    obj.update({"amount": amount, "currency": "usd"})
    if kind.startswith("payment_intent."):
        obj.update({"id": pi, "metadata": metadata, "customer": customer})
    elif kind == "charge.refunded":
        obj.update(
            {
                "payment_intent": pi,
                "metadata": metadata,
                "customer": customer,
                "amount_refunded": amount,
            }
        )
    else:  # disputes carry no metadata nor customer: traced through their PaymentIntent
        obj.update({"payment_intent": pi})
    obj.update(fields)
    return event


def deliver(
    event: dict | bytes, *, secret: str = SECRET, at: int | None = None, header: str | None = "sign"
):
    payload = event if isinstance(event, bytes) else json.dumps(event).encode()
    headers = {"content-type": "application/json"}
    if header == "sign":
        headers["stripe-signature"] = stripe.WebhookSignature.generate_signature_header(
            payload.decode(), secret, timestamp=int(time.time()) if at is None else at
        )
    elif header is not None:
        headers["stripe-signature"] = header
    url_event = {
        "version": "2.0",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": "/"}},
        "body": payload.decode(),
        "isBase64Encoded": False,
    }
    response = lambda_handler(url_event, LambdaContext("stripe-webhook"))
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def waiting(services, payments):
    """A create whose payment outcome was unknown (Stripe timed out): nothing applied yet."""
    add_account(services.store)
    payments.cards["cus_acc_1"] = "unavailable"
    status, problem = post_integration("Late feed", "starter")
    assert (status, problem["code"]) == (503, "payment_pending")
    (line,), _ = services.store.list_charges("acc_1")
    assert line.status is ChargeStatus.PENDING
    return line


def state(services):
    lines, _ = services.store.list_charges("acc_1")
    integrations = services.store.list_integrations("acc_1").integrations
    return (
        [(line.status, line.applied, line.disputed) for line in lines],
        [(i.id, i.status, i.version) for i in integrations],
        len(outbox_events(services.store, "acc_1")),
    )


@pytest.mark.parametrize(
    "tamper",
    ["missing_header", "bad_signature", "stale_timestamp", "wrong_secret", "reserialised_body"],
)
def test_an_unverifiable_delivery_is_400_and_changes_nothing(services, waiting, tamper):
    event = stripe_event("payment_intent.succeeded", charge_id=waiting.id, pi="pi_late_1")
    before = state(services)
    payload = json.dumps(event).encode()
    if tamper == "missing_header":
        status, _ = deliver(payload, header=None)
    elif tamper == "bad_signature":
        status, _ = deliver(payload, header=f"t={int(time.time())},v1={'0' * 64}")
    elif tamper == "stale_timestamp":
        status, _ = deliver(payload, at=int(time.time()) - 301)
    elif tamper == "wrong_secret":
        status, _ = deliver(payload, secret="whsec_someone_else")
    else:
        signature = stripe.WebhookSignature.generate_signature_header(
            payload.decode(), SECRET, timestamp=int(time.time())
        )
        reserialised = json.dumps(json.loads(payload), indent=2).encode()
        status, _ = deliver(reserialised, header=signature)
    assert status == 400
    assert state(services) == before
    assert not services.store.webhook_event_seen(event["id"])


SUCCEEDED = "payment_intent.succeeded"
ODD_BODIES = {
    "[]": b"[]",
    "null": b"null",
    '"evt"': b'"evt"',
    "1": b"1",
    "true": b"true",
    "{}": b"{}",
    "a type and no id": json.dumps({"type": SUCCEEDED}).encode(),
    "an empty id": json.dumps({"id": "", "type": SUCCEEDED}).encode(),
    "a numeric id": json.dumps({"id": 7, "type": SUCCEEDED}).encode(),
    "a list id": json.dumps({"id": ["evt_1"], "type": SUCCEEDED}).encode(),
    "an id of 256 characters": json.dumps({"id": "e" * 256, "type": SUCCEEDED}).encode(),
    "an id of 3,000 characters": json.dumps({"id": "e" * 3000, "type": SUCCEEDED}).encode(),
    "an id of 256 characters, unknown type": json.dumps({"id": "e" * 256, "type": "x"}).encode(),
    "no type": json.dumps({"id": "evt_no_type"}).encode(),
    "a numeric type": json.dumps({"id": "evt_numeric_type", "type": 1}).encode(),
    "10,000 levels": b"[" * 10_000 + b"]" * 10_000,
    "not JSON": b"{evt",
}


@pytest.mark.parametrize("label", ODD_BODIES)
def test_a_signed_body_that_is_not_an_event_with_a_short_id_is_400_and_records_nothing(
    services, waiting, label
):
    before = table_items(services.store)
    status, body = deliver(ODD_BODIES[label])
    bad_inputs.record(f"webhook|POST /|signed {label}", status)
    assert (status, body) == (400, {"error": "not a Stripe event"})
    assert table_items(services.store) == before


@pytest.mark.parametrize("label", ODD_BODIES)
def test_an_unsigned_odd_body_is_400_and_records_nothing(services, waiting, label):
    before = table_items(services.store)
    status, _ = deliver(ODD_BODIES[label], header=None)
    bad_inputs.record(f"webhook|POST /|unsigned {label}", status)
    assert status == 400
    assert table_items(services.store) == before


def test_an_event_id_of_255_characters_is_processed_once(services, waiting):
    event = stripe_event(SUCCEEDED, charge_id=waiting.id, pi="pi_long_id")
    event["id"] = "evt_" + "x" * 251
    assert deliver(event)[0] == 200
    assert services.store.webhook_event_seen(event["id"])
    assert deliver(event) == (200, {"received": True, "result": "duplicate"})


def test_payment_succeeded_applies_the_create_that_was_waiting_on_it(services, waiting):
    status, body = deliver(
        stripe_event("payment_intent.succeeded", charge_id=waiting.id, pi="pi_late_1")
    )
    assert (status, body["result"]) == (200, "succeeded:applied")
    (integration,) = services.store.list_integrations("acc_1").integrations
    assert (integration.name, integration.status) == ("Late feed", Status.ACTIVE)
    (line,), _ = services.store.list_charges("acc_1")
    assert (line.status, line.applied, line.stripe_payment_intent) == (
        ChargeStatus.SUCCEEDED,
        True,
        "pi_late_1",
    )


def test_either_rotated_secret_verifies(services, waiting):
    status, _ = deliver(
        stripe_event("payment_intent.succeeded", charge_id=waiting.id, pi="pi_1"), secret=OLD_SECRET
    )
    assert status == 200


def test_a_duplicate_event_is_acknowledged_and_changes_nothing_more(services, waiting):
    event = stripe_event("payment_intent.succeeded", charge_id=waiting.id, pi="pi_late_1")
    deliver(event)
    after_first = state(services)
    status, body = deliver(event)
    assert (status, body["result"]) == (200, "duplicate")
    assert state(services) == after_first


def test_fifty_concurrent_deliveries_of_one_event_make_one_change(services, waiting):
    event = stripe_event("payment_intent.succeeded", charge_id=waiting.id, pi="pi_late_1")
    barrier = threading.Barrier(50)
    statuses = []

    def one():
        barrier.wait()
        statuses.append(deliver(event)[0])

    threads = [threading.Thread(target=one) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 50
    (integration,) = services.store.list_integrations("acc_1").integrations
    assert integration.version == 1
    # One change, and one ChargeSucceeded for it (notifications.md: the receipt's event).
    assert sorted(e["detail-type"] for e in outbox_events(services.store, "acc_1")) == [
        "ChargeSucceeded",
        "IntegrationCreated",
    ]
    (line,), _ = services.store.list_charges("acc_1")
    assert (line.status, line.applied, line.revision) == (ChargeStatus.SUCCEEDED, True, 1)
    assert line.receipt_number == "R-1-0001"


EVENT_KINDS = [
    "payment_intent.succeeded",
    "charge.refunded",
    "charge.dispute.created",
    "payment_intent.payment_failed",
]


def _charged(payments, charge_id: str) -> str:
    """A PaymentIntent the provider knows (a dispute is traced through it)."""
    payments.cards["cus_acc_1"] = "ok"
    request = PaymentRequest(
        customer_id="cus_acc_1",
        amount=2900,
        currency="usd",
        description="x",
        idempotency_key="k",
        metadata={"account_id": "acc_1", "charge_id": charge_id},
    )
    return payments.charge(request).payment_intent_id


@pytest.mark.parametrize(
    "order",
    list(itertools.permutations(EVENT_KINDS)),
    ids=lambda order: ">".join(kind.split(".")[-1] for kind in order),
)
def test_every_order_of_an_applied_charges_events_converges_to_the_same_state(
    services, payments, order
):
    """The usual case: the request applied its charge; Stripe's events come in any order."""
    add_account(services.store)
    status, _ = post_integration("Feed", "starter")
    assert status == 201
    (line,), _ = services.store.list_charges("acc_1")
    for kind in order:
        status, _ = deliver(stripe_event(kind, charge_id=line.id, pi=line.stripe_payment_intent))
        assert status == 200
    (line,), _ = services.store.list_charges("acc_1")
    assert (line.status, line.applied, line.disputed) == (ChargeStatus.REFUNDED, True, True)
    (integration,) = services.store.list_integrations("acc_1").integrations
    assert (integration.status, integration.version) == (Status.ACTIVE, 1)
    history = [h.type for h in services.store.history("acc_1", integration.id)]
    assert history.count("charge_refunded") == 1
    assert history.count("charge_disputed") == 1
    outbox = [e["detail-type"] for e in outbox_events(services.store, "acc_1")]
    assert outbox.count("ChargeRefunded") == 1


@pytest.mark.parametrize(
    "order",
    list(itertools.permutations(EVENT_KINDS)),
    ids=lambda order: ">".join(kind.split(".")[-1] for kind in order),
)
def test_a_waiting_charge_ends_refunded_and_applied_at_most_once_in_every_order(
    services, payments, waiting, order
):
    """A payment whose outcome the request never learned: a refund reported before its success
    is final (a refunded line pays for nothing); reported after, the period served stays."""
    pi = _charged(payments, waiting.id)
    for kind in order:
        status, _ = deliver(stripe_event(kind, charge_id=waiting.id, pi=pi))
        assert status == 200
    (line,), _ = services.store.list_charges("acc_1")
    assert (line.status, line.disputed, line.stripe_payment_intent) == (
        ChargeStatus.REFUNDED,
        True,
        pi,
    )
    created = services.store.list_integrations("acc_1").integrations
    success_first = order.index("payment_intent.succeeded") < order.index("charge.refunded")
    assert line.applied is success_first
    assert [(i.status, i.version) for i in created] == (
        [(Status.ACTIVE, 1)] if success_first else []
    )
    outbox = [e["detail-type"] for e in outbox_events(services.store, "acc_1")]
    assert outbox.count("ChargeRefunded") == 1
    assert outbox.count("IntegrationCreated") == (1 if success_first else 0)


FORGERIES = {
    "another PaymentIntent": {"pi": "pi_someone_elses"},
    "another amount": {"amount": 1},
    "another currency": {"currency": "eur"},
    "another customer": {"customer": "cus_attacker"},
    "another tenant's charge": {"account_id": "acc_2"},
    "no metadata": {"metadata": {}},
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
@pytest.mark.parametrize("kind", ["payment_intent.succeeded", "charge.refunded"])
def test_a_signed_event_that_does_not_match_its_ledger_line_changes_nothing(
    services, waiting, forgery, kind
):
    # The line already knows its PaymentIntent (Stripe answered, the request did not finish).
    services.store.save_charge(waiting, replace(waiting, stripe_payment_intent="pi_real_1"))
    add_account(services.store, "acc_2")
    before = state(services)
    changes = dict(FORGERIES[forgery])
    pi = changes.pop("pi", "pi_real_1")
    event = stripe_event(kind, charge_id=waiting.id, pi=pi, **changes)
    status, body = deliver(event)
    assert status == 200
    assert body["result"].startswith(("mismatch", "unknown_charge")), body
    assert state(services) == before
    assert services.store.list_integrations("acc_1").integrations == ()


def test_a_mismatch_is_counted_in_the_webhook_mismatch_metric(services, waiting, capsys):
    services.store.save_charge(waiting, replace(waiting, stripe_payment_intent="pi_real_1"))
    deliver(stripe_event("payment_intent.succeeded", charge_id=waiting.id, pi="pi_other"))
    metrics = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith('{"_aws"')
    ]
    assert any(m.get("WebhookMismatch") == [1.0] for m in metrics)


def test_a_declined_charges_line_is_not_marked_paid_by_anothers_success(services, payments):
    """The audit's case: a signed success of one charge, its metadata pointing at a declined
    create: nothing is created, the declined line stays declined."""
    add_account(services.store)
    payments.cards["cus_acc_1"] = "declined"
    status, _ = post_integration("Declined", "standard")
    assert status == 402
    (declined,), _ = services.store.list_charges("acc_1")
    payments.cards["cus_acc_1"] = "ok"
    status, _ = post_integration("Paid", "standard")
    assert status == 201
    paid = next(c for c in services.store.list_charges("acc_1")[0] if c.id != declined.id)
    forged = stripe_event(
        "payment_intent.succeeded",
        charge_id=declined.id,
        pi=paid.stripe_payment_intent,
        amount=4900,
    )
    status, body = deliver(forged)
    assert (status, body["result"]) == (200, "mismatch:payment_intent")
    assert services.store.get_charge("acc_1", declined.id).status is ChargeStatus.FAILED
    assert [i.name for i in services.store.list_integrations("acc_1").integrations] == ["Paid"]


def test_unknown_event_types_are_acknowledged_and_ignored(services, waiting):
    before = state(services)
    event = json.loads((SAMPLES / "unknown.event.json").read_text())
    status, body = deliver(event)
    assert (status, body["result"]) == (200, "ignored")
    assert state(services) == before


def test_a_late_successful_renewal_payment_clears_past_due(services, payments, clock):
    add_account(services.store)
    status, created = post_integration("Feed", "standard")
    subject = services.store.get_integration("acc_1", created["id"])
    clock.set(subject.current_period_end)
    payments.cards["cus_acc_1"] = "declined"
    from lifecycle.usecases import renewals  # noqa: PLC0415

    assert renewals.renew(services, "acc_1", subject.id).result == "past_due"
    renewal_line = next(c for c in services.store.list_charges("acc_1")[0] if c.kind == "renewal")
    # The customer completes the declined PaymentIntent another way; Stripe tells us.
    status, body = deliver(
        stripe_event(
            "payment_intent.succeeded",
            charge_id=renewal_line.id,
            pi=renewal_line.stripe_payment_intent,
            amount=4900,
        )
    )
    assert (status, body["result"]) == (200, "succeeded:applied")
    after = services.store.get_integration("acc_1", subject.id)
    assert (after.billing_state, after.current_period_start) == (
        BillingState.OK,
        subject.current_period_end,
    )
    assert (
        decide_renewal(
            after, clock.now(), account_status=AccountStatus.ACTIVE, catalog=services.catalog
        )
        is None
    )
