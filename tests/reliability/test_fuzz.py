"""Fuzzing with Hypothesis: the webhook parser and every request body. No input may raise out
of a handler or produce a 5xx; every refusal is a 4xx that changes nothing, and what is accepted
reads back identical (deep nesting, NaN, the infinities and numbers beyond a double included)."""

from __future__ import annotations

import json
import math
import sys
import time

import pytest
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.stripe_webhook.app import lambda_handler as webhook
from local.events import LambdaContext
from local.inprocess import invoke
from local.template import route_table
from tests import bad_inputs
from tests.factories import add_account, post_integration
from tests.store_reads import table_items

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
DEPTH_LIMIT = 32
# Numbers as a careless client writes them: NaN and the infinities (Python's json writes them),
# and literals beyond a double's range, or at its edges.
NUMBER_LITERALS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e400",
    "1" + "0" * 400,
    "1.7976931348623157e308",
    "5e-324",
    "1e-400",
    "-0",
    "0.0",
    str(2**63),
]
# Values with every float, NaN and the infinities included.
any_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def json_bodies(draw) -> str:
    """A body's text: a settings-like document whose values may be nested 0 to 2,000 levels
    deep around a number literal of NUMBER_LITERALS, or any value of `any_values`."""
    field = draw(st.sampled_from(["pricing_rules", "category_mapping", "catalog_rules", "x"]))
    if draw(st.booleans()):
        return json.dumps({field: draw(any_values)})
    depth = draw(st.integers(0, 40) | st.integers(0, 2000))
    opening, closing = draw(st.sampled_from([('{"k": ', "}"), ("[", "]")]))
    literal = draw(st.sampled_from(NUMBER_LITERALS) | any_values.map(json.dumps))
    return f'{{"{field}": {{"v": {opening * depth}{literal}{closing * depth}}}}}'


def _a_double(number: float) -> bool:
    # An int is compared as it is: math.isfinite would convert it, and overflow.
    return abs(number) <= sys.float_info.max if isinstance(number, int) else math.isfinite(number)


def outside_the_limits(text: str) -> bool:
    """What api.md refuses as malformed_json: deeper than 32 levels, NaN or Infinity, or a
    number beyond a double's range (Python's lenient reading of `text`, measured here)."""
    document = json.loads(text)
    deepest, pending = 0, [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            children = value.values() if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)
        elif isinstance(value, int | float) and not _a_double(value):
            return True
    return deepest > DEPTH_LIMIT


@pytest.mark.parametrize(("method", "route"), BODY_ROUTES)
def test_any_json_body_is_a_4xx_that_changes_nothing_or_a_2xx_kept_verbatim(
    services, method, route
):
    add_account(services.store)
    status, created = post_integration("Fuzzed feed", "standard")
    assert status == 201, created
    params = {"id": created["id"]} if "{id}" in route else None

    @FUZZ
    @given(text=json_bodies())
    def run(text):
        refuse = outside_the_limits(text)
        before = table_items(services.store)
        status, answer = invoke(method, route, params, raw_body=text)
        bad_inputs.record(f"fuzz|{method} {route}|{bad_inputs.digest(text)}", status)
        assert status < 500, (status, answer)
        if refuse:
            assert (status, answer["code"]) == (400, "malformed_json"), answer
        if status >= 400:
            assert {"status", "code", "title", "detail"} <= set(answer)
            assert answer["status"] == status
            assert table_items(services.store) == before
        elif route.endswith("/settings"):
            _, read = invoke("GET", "/v1/integrations/{id}", params)
            sent = json.loads(text)
            assert read["settings"] == {
                name: sent.get(name, {})
                for name in ("pricing_rules", "category_mapping", "catalog_rules")
            }

    run()
