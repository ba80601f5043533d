"""Fuzzing with Hypothesis: the webhook parser and every request body. No input may raise out
of a handler or produce a 5xx; every refusal is a 4xx."""

from __future__ import annotations

import json
import time

import pytest
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.stripe_webhook.app import lambda_handler as webhook
from local.events import LambdaContext
from tests.api_events import invoke, route_table
from tests.integration.api.conftest import add_account

pytestmark = pytest.mark.integration

SECRET = "whsec_fuzz_6d2f"
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def url_event(body: bytes, headers: dict[str, str]) -> dict:
    return {
        "version": "2.0",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": "/"}},
        "body": body.decode("utf-8", errors="replace"),
        "isBase64Encoded": False,
    }


@pytest.fixture
def webhook_ready(services, monkeypatch):
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS", SECRET)
    add_account(services.store)
    return services


@FUZZ
@given(body=st.binary(max_size=300), header=st.text(max_size=120))
def test_unsigned_garbage_is_always_a_400(webhook_ready, body, header):
    response = webhook(url_event(body, {"stripe-signature": header}), LambdaContext())
    assert response["statusCode"] == 400


@FUZZ
@given(
    kind=st.sampled_from(
        [
            "payment_intent.succeeded",
            "payment_intent.payment_failed",
            "charge.refunded",
            "charge.dispute.created",
            "customer.created",
        ]
    ),
    obj=json_values,
    metadata=st.dictionaries(
        st.sampled_from(["account_id", "charge_id", "kind"]), json_values, max_size=3
    ),
    # The id and the type stay those of a Stripe event (odd ones: test_stripe_webhook.py).
    extra=st.dictionaries(
        st.text(max_size=8).filter(lambda key: key not in ("id", "type")), json_values, max_size=3
    ),
)
def test_any_signed_event_shape_is_handled_without_a_server_error(
    webhook_ready, kind, obj, metadata, extra
):
    if isinstance(obj, dict):
        obj = {**obj, "metadata": metadata}
    event = {"id": f"evt_{time.time_ns()}", "type": kind, "data": {"object": obj}, **extra}
    payload = json.dumps(event)
    signature = stripe.WebhookSignature.generate_signature_header(
        payload, SECRET, timestamp=int(time.time())
    )
    response = webhook(
        url_event(payload.encode(), {"stripe-signature": signature}), LambdaContext()
    )
    assert response["statusCode"] == 200, response


BODY_ROUTES = sorted((m, r) for (m, r) in route_table() if m in ("POST", "PUT"))


@pytest.mark.parametrize(("method", "route"), BODY_ROUTES)
def test_any_json_body_is_answered_without_a_server_error(services, method, route):
    add_account(services.store)

    @FUZZ
    @given(body=json_values)
    def run(body):
        status, answer = invoke(
            method, route, {"id": "int_fuzz"} if "{id}" in route else None, body=body
        )
        assert status < 500, (status, answer)
        if status >= 400:
            assert {"status", "code", "title", "detail"} <= set(answer)

    run()
