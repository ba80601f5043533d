"""The Stripe adapter against a real localstripe process, and a stub Stripe where it falls short."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from stripe import AuthenticationError, InvalidRequestError

from lifecycle.ids import new_id
from lifecycle.payments.port import PaymentOutcome, PaymentRequest, PaymentsUnavailable
from lifecycle.payments.stripe_adapter import StripePayments
from lifecycle.payments.stripe_webhooks import verify_webhook
from local.localstripe import (
    count_payment_intents,
    create_customer_with_card,
    payment_intents,
    register_webhook,
    swap_card,
)
from local.processes import free_port
from tests.parameter_store import secret_in_parameter_store
from tests.stripe_stub import StubStripe

pytestmark = pytest.mark.integration


def renewal(integration_id: str = "int_1", charge_id: str | None = None) -> dict[str, Any]:
    """The arguments of a renewal charge of 49.00 USD, as the renewal use case sends them."""
    charge_id = charge_id or new_id("chg")
    return {
        "amount": 4900,
        "currency": "usd",
        "description": "Shopify EU: active fee $49.00 for 2026-11-21 to 2026-12-21",
        "idempotency_key": f"renewal:{integration_id}:{charge_id}:2026-11-21T10:00:00Z",
        "metadata": {
            "account_id": "acc_1",
            "charge_id": charge_id,
            "integration_ids": integration_id,
            "kind": "renewal",
        },
    }


def test_charge_of_4900_usd_succeeds_as_one_payment_intent_with_our_metadata(
    payments: StripePayments, localstripe_base: str
):
    customer = create_customer_with_card(localstripe_base, "ok", email="owner@example.com")
    charge = renewal()

    result = payments.charge(PaymentRequest(customer_id=customer, **charge))

    assert result.outcome is PaymentOutcome.SUCCEEDED
    assert result.payment_intent_id is not None
    assert result.payment_intent_id.startswith("pi_")
    [intent] = payment_intents(localstripe_base, customer)
    assert intent["id"] == result.payment_intent_id
    assert intent["status"] == "succeeded"
    assert (intent["amount"], intent["currency"]) == (4900, "usd")
    assert intent["metadata"] == charge["metadata"]
    assert intent["description"] == charge["description"]


def test_declined_card_is_a_failed_charge_not_an_exception(
    payments: StripePayments, localstripe_base: str
):
    customer = create_customer_with_card(localstripe_base, "declined")

    result = payments.charge(PaymentRequest(customer_id=customer, **renewal()))

    assert result.outcome is PaymentOutcome.FAILED
    assert result.failure_message == "Your card was declined."
    assert result.failure_code == "card_declined"
    assert result.payment_intent_id is not None
    assert result.payment_intent_id.startswith("pi_")
    assert "0341" not in result.failure_message


def test_charge_after_swapping_to_a_good_card_succeeds(
    payments: StripePayments, localstripe_base: str
):
    customer = create_customer_with_card(localstripe_base, "declined")
    assert (
        payments.charge(PaymentRequest(customer_id=customer, **renewal())).outcome
        is PaymentOutcome.FAILED
    )

    swap_card(localstripe_base, customer, "ok")

    assert (
        payments.charge(PaymentRequest(customer_id=customer, **renewal())).outcome
        is PaymentOutcome.SUCCEEDED
    )


def test_find_returns_the_payment_intent_of_a_charge_whose_answer_was_lost(
    payments: StripePayments, localstripe_base: str
):
    # Given a charge Stripe made, but a crash before the ledger recorded its answer
    customer = create_customer_with_card(localstripe_base, "ok")
    other = renewal("int_2")
    payments.charge(PaymentRequest(customer_id=customer, **other))
    charge = renewal("int_1")
    made = payments.charge(PaymentRequest(customer_id=customer, **charge))

    # When the reconciliation looks for it by the ledger's charge id
    found = payments.find(customer_id=customer, charge_id=charge["metadata"]["charge_id"])

    # Then it finds that PaymentIntent, and not the other one
    assert found is not None
    assert found.outcome is PaymentOutcome.SUCCEEDED
    assert found.payment_intent_id == made.payment_intent_id


def test_find_returns_a_declined_charge_as_failed(payments: StripePayments, localstripe_base: str):
    customer = create_customer_with_card(localstripe_base, "declined")
    charge = renewal()
    made = payments.charge(PaymentRequest(customer_id=customer, **charge))

    found = payments.find(customer_id=customer, charge_id=charge["metadata"]["charge_id"])

    assert found is not None
    assert found.outcome is PaymentOutcome.FAILED
    assert found.payment_intent_id == made.payment_intent_id
    assert found.failure_message == "Your card was declined."


def test_find_returns_none_for_a_charge_never_sent(payments: StripePayments, localstripe_base: str):
    customer = create_customer_with_card(localstripe_base, "ok")
    payments.charge(PaymentRequest(customer_id=customer, **renewal()))

    assert payments.find(customer_id=customer, charge_id=new_id("chg")) is None


def test_find_pages_through_many_payment_intents(payments: StripePayments, localstripe_base: str):
    customer = create_customer_with_card(localstripe_base, "ok")
    oldest = renewal()
    made = payments.charge(PaymentRequest(customer_id=customer, **oldest))
    for _ in range(105):
        payments.charge(PaymentRequest(customer_id=customer, **renewal()))

    found = payments.find(customer_id=customer, charge_id=oldest["metadata"]["charge_id"])

    assert found is not None
    assert found.payment_intent_id == made.payment_intent_id


def test_charge_is_pending_within_seconds_when_stripe_cannot_be_reached(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("STRIPE_API_BASE", f"http://127.0.0.1:{free_port()}")
    payments = StripePayments("sk_test_closed_port")
    began = time.monotonic()

    result = payments.charge(PaymentRequest(customer_id="cus_unreachable", **renewal()))

    assert result.outcome is PaymentOutcome.PENDING
    assert result.payment_intent_id is None
    assert time.monotonic() - began < 5


def test_find_raises_payments_unavailable_when_stripe_cannot_be_reached():
    payments = StripePayments("sk_test_closed_port", api_base=f"http://127.0.0.1:{free_port()}")

    with pytest.raises(PaymentsUnavailable):
        payments.find(customer_id="cus_unreachable", charge_id="chg_1")


def test_wrong_api_key_raises_rather_than_passing_for_a_payment_outcome(localstripe_base: str):
    customer = create_customer_with_card(localstripe_base, "ok")
    payments = StripePayments("pk_test_not_a_secret_key", api_base=localstripe_base)

    with pytest.raises(AuthenticationError):
        payments.charge(PaymentRequest(customer_id=customer, **renewal()))
    assert count_payment_intents(localstripe_base, customer) == 0


# ---------------------------------------------------------------- a stub Stripe, over HTTP

CUSTOMER = {
    "id": "cus_stub",
    "object": "customer",
    "invoice_settings": {"default_payment_method": "pm_stub"},
}
SUCCEEDED = {
    "id": "pi_stub",
    "object": "payment_intent",
    "status": "succeeded",
    "amount": 4900,
    "currency": "usd",
    "metadata": {},
}
RATE_LIMITED = (429, {"error": {"type": "invalid_request_error", "code": "rate_limit"}})


def test_billing_portal_url_comes_from_a_portal_session_for_the_customer(
    stub_stripe: StubStripe,
):
    stub_stripe.answer(
        "POST",
        "/v1/billing_portal/sessions",
        (
            200,
            {
                "id": "bps_1",
                "object": "billing_portal.session",
                "url": "https://billing.stripe.com/p/session/test",
            },
        ),
    )
    payments = StripePayments("sk_test_stub", api_base=stub_stripe.api_base)

    url = payments.billing_portal_url(
        customer_id="cus_stub", return_url="https://app.example.com/billing"
    )

    assert url == "https://billing.stripe.com/p/session/test"
    [request] = stub_stripe.to("POST", "/v1/billing_portal/sessions")
    assert request.form == {"customer": "cus_stub", "return_url": "https://app.example.com/billing"}


def test_local_billing_portal_opens_a_page_with_the_card_on_file_and_the_way_back(
    payments: StripePayments, localstripe_base: str
):
    """localstripe has no portal; the local stack's stands in, so the dashboard's
    Manage payment method works locally too."""
    customer = create_customer_with_card(localstripe_base, "ok")

    url = payments.billing_portal_url(
        customer_id=customer, return_url="http://localhost:3000/#/account"
    )

    assert url.startswith(f"{localstripe_base}/_config/billing_portal/bps_")
    with urllib.request.urlopen(url, timeout=5) as page:
        html = page.read().decode()
    assert "visa ending 4242" in html
    assert 'href="http://localhost:3000/#/account"' in html
    with pytest.raises(InvalidRequestError):
        payments.billing_portal_url(customer_id="cus_nobody", return_url="http://localhost/")


def test_secret_key_comes_from_parameter_store_when_none_is_given(
    stub_stripe: StubStripe, monkeypatch: pytest.MonkeyPatch
):
    stub_stripe.answer(
        "POST",
        "/v1/billing_portal/sessions",
        (200, {"id": "bps_1", "object": "billing_portal.session", "url": "https://portal"}),
    )
    with secret_in_parameter_store(
        monkeypatch,
        "STRIPE_SECRET_KEY",
        "/integrations/dev/stripe/secret-key",
        "sk_test_from_parameter_store",
    ):
        payments = StripePayments(api_base=stub_stripe.api_base)

        payments.billing_portal_url(customer_id="cus_stub", return_url="https://app")

    [request] = stub_stripe.to("POST", "/v1/billing_portal/sessions")
    assert request.headers["Authorization"] == "Bearer sk_test_from_parameter_store"
    assert request.headers["Stripe-Version"] == "2026-10-28.endive"


def test_rate_limited_charge_is_retried_with_the_same_idempotency_key_then_succeeds(
    stub_stripe: StubStripe,
):
    stub_stripe.answer("GET", "/v1/customers/cus_stub", (200, CUSTOMER))
    stub_stripe.answer("POST", "/v1/payment_intents", RATE_LIMITED, RATE_LIMITED, (200, SUCCEEDED))
    payments = StripePayments("sk_test_stub", api_base=stub_stripe.api_base)
    charge = renewal()

    result = payments.charge(PaymentRequest(customer_id="cus_stub", **charge))

    assert result.outcome is PaymentOutcome.SUCCEEDED
    attempts = stub_stripe.to("POST", "/v1/payment_intents")
    assert len(attempts) == 3
    assert {a.headers["Idempotency-Key"] for a in attempts} == {charge["idempotency_key"]}
    assert attempts[0].form["payment_method"] == "pm_stub"
    assert attempts[0].form["off_session"] == "true"
    assert attempts[0].form["confirm"] == "true"
    assert attempts[0].form["metadata[charge_id]"] == charge["metadata"]["charge_id"]


def test_charge_still_rate_limited_after_a_few_retries_is_pending_within_five_seconds(
    stub_stripe: StubStripe,
):
    stub_stripe.answer("GET", "/v1/customers/cus_stub", (200, CUSTOMER))
    stub_stripe.answer("POST", "/v1/payment_intents", RATE_LIMITED)
    payments = StripePayments("sk_test_stub", api_base=stub_stripe.api_base)
    began = time.monotonic()

    result = payments.charge(PaymentRequest(customer_id="cus_stub", **renewal()))

    assert result.outcome is PaymentOutcome.PENDING
    assert time.monotonic() - began < 5
    assert len(stub_stripe.to("POST", "/v1/payment_intents")) == 4


def test_stripe_server_error_makes_the_charge_pending(stub_stripe: StubStripe):
    stub_stripe.answer("GET", "/v1/customers/cus_stub", (200, CUSTOMER))
    stub_stripe.answer(
        "POST", "/v1/payment_intents", (500, {"error": {"type": "api_error", "message": "oops"}})
    )
    payments = StripePayments("sk_test_stub", api_base=stub_stripe.api_base)

    result = payments.charge(PaymentRequest(customer_id="cus_stub", **renewal()))

    assert result.outcome is PaymentOutcome.PENDING


def test_customer_with_no_card_is_a_failed_charge_and_nothing_is_sent(stub_stripe: StubStripe):
    stub_stripe.answer(
        "GET",
        "/v1/customers/cus_stub",
        (200, {**CUSTOMER, "invoice_settings": {"default_payment_method": None}}),
    )
    stub_stripe.answer(
        "GET", "/v1/payment_methods", (200, {"object": "list", "data": [], "has_more": False})
    )
    payments = StripePayments("sk_test_stub", api_base=stub_stripe.api_base)

    result = payments.charge(PaymentRequest(customer_id="cus_stub", **renewal()))

    assert result.outcome is PaymentOutcome.FAILED
    assert result.failure_code == "no_payment_method"
    assert stub_stripe.to("POST", "/v1/payment_intents") == []
    [listing] = stub_stripe.to("GET", "/v1/payment_methods")
    assert listing.form["customer"] == "cus_stub"
    assert listing.form["type"] == "card"


# ---------------------------------------------------------------- webhooks from localstripe


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[str, queue.Queue[tuple[bytes, str | None]]]]:
    received: queue.Queue[tuple[bytes, str | None]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.put((body, self.headers.get("Stripe-Signature")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_registered_webhook_receives_localstripe_events_that_verify_with_our_secret(
    payments: StripePayments,
    localstripe_base: str,
    webhook_receiver: tuple[str, queue.Queue[tuple[bytes, str | None]]],
):
    url, received = webhook_receiver
    secret = "whsec_test_localstripe_" + new_id("wh")
    name = new_id("test")
    register_webhook(localstripe_base, name, url, secret, events=["payment_intent.succeeded"])
    customer = create_customer_with_card(localstripe_base, "ok")
    charge = renewal()
    try:
        result = payments.charge(PaymentRequest(customer_id=customer, **charge))

        # localstripe sends its events a second after the request, one at a time.
        deadline = time.monotonic() + 10
        while True:
            body, signature = received.get(timeout=max(0.1, deadline - time.monotonic()))
            event = verify_webhook(body, signature, [secret])
            if event["data"]["object"]["id"] == result.payment_intent_id:
                break
    finally:
        # Stop the deliveries before the receiver goes away.
        register_webhook(localstripe_base, name, url, secret, events=[])

    assert event["type"] == "payment_intent.succeeded"
    assert event["data"]["object"]["metadata"] == charge["metadata"]
    assert json.loads(body) == event


def test_importing_the_adapter_does_not_import_stripe_or_powertools():
    code = (
        "import sys, lifecycle.payments.stripe_adapter\n"
        "print(','.join(sorted(n for n in sys.modules "
        "if n.split('.')[0] in {'stripe', 'aws_lambda_powertools'})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
