"""localstripe (PyPI), the fake Stripe server, as its clients use it: the key it accepts, its test
cards, and set-up over HTTP (customers and cards, webhook endpoints, what a customer paid).

The server itself, with the behaviours of real Stripe it lacks added, is
`local.localstripe_server` (`python -m local.localstripe_server`).
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from local.http_json import request_json

# localstripe accepts any key that starts with `sk_`.
SECRET_KEY = "sk_test_localstripe"  # noqa: S105 - not a secret: any sk_ key works
Card = Literal["ok", "declined"]
# `declined` attaches to the customer, then every charge on it fails (card_declined).
CARD_NUMBERS: dict[str, str] = {"ok": "4242424242424242", "declined": "4000000000000341"}


# ---------------------------------------------------------------- set-up helpers (HTTP)


def create_customer_with_card(api_base: str, card: Card, email: str | None = None) -> str:
    """A new customer whose default payment method is the test card `card`; its id."""
    customer = _request(api_base, "POST", "/v1/customers", {"email": email} if email else {})
    customer_id = str(customer["id"])
    swap_card(api_base, customer_id, card)
    return customer_id


def swap_card(api_base: str, customer_id: str, card: Card) -> str:
    """Attach a new test card, make it the default and detach the previous default; its id."""
    customer = _request(api_base, "GET", f"/v1/customers/{customer_id}")
    previous = (customer.get("invoice_settings") or {}).get("default_payment_method")
    method = _request(
        api_base,
        "POST",
        "/v1/payment_methods",
        {
            "type": "card",
            "card": {
                "number": CARD_NUMBERS[card],
                "exp_month": "12",
                "exp_year": str(time.gmtime().tm_year + 3),
                "cvc": "123",
            },
        },
    )
    method_id = str(method["id"])
    _request(api_base, "POST", f"/v1/payment_methods/{method_id}/attach", {"customer": customer_id})
    _request(
        api_base,
        "POST",
        f"/v1/customers/{customer_id}",
        {"invoice_settings": {"default_payment_method": method_id}},
    )
    if previous:
        _request(api_base, "POST", f"/v1/payment_methods/{previous}/detach", {})
    return method_id


def register_webhook(
    api_base: str, name: str, url: str, secret: str, events: Iterable[str] | None = None
) -> None:
    """Have localstripe POST its events, signed with `secret`, to `url` (all events unless
    `events` lists some). Registering `name` again replaces it."""
    body: dict[str, Any] = {"url": url, "secret": secret}
    if events is not None:
        body["events"] = list(events)
    request = urllib.request.Request(  # noqa: S310 - local http only
        f"{api_base}/_config/webhooks/{urllib.parse.quote(name, safe='')}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - local http only
        pass


def payment_intents(api_base: str, customer_id: str) -> list[dict[str, Any]]:
    """Every PaymentIntent of the customer, newest first."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"customer": customer_id, "limit": 100}
    while True:
        page = _request(api_base, "GET", "/v1/payment_intents", params)
        found += page["data"]
        if not page["has_more"] or not page["data"]:
            return found
        params["starting_after"] = page["data"][-1]["id"]


def refunds(api_base: str, payment_intent_id: str) -> list[dict[str, Any]]:
    """Every refund of a PaymentIntent, newest first."""
    page = _request(
        api_base, "GET", "/v1/refunds", {"payment_intent": payment_intent_id, "limit": 100}
    )
    return list(page["data"])


def money_kept(api_base: str, customer_id: str) -> tuple[int, int]:
    """What localstripe says the customer paid in the end: (succeeded PaymentIntents' total,
    refunds' total), in cents."""
    paid = refunded = 0
    for intent in payment_intents(api_base, customer_id):
        if intent["status"] != "succeeded":
            continue
        paid += int(intent["amount"])
        refunded += sum(int(r["amount"]) for r in refunds(api_base, intent["id"]))
    return paid, refunded


def count_payment_intents(api_base: str, customer_id: str) -> int:
    return len(payment_intents(api_base, customer_id))


def _request(
    api_base: str, method: str, path: str, params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    query = urllib.parse.urlencode(_flatten(params or {}))
    url = f"{api_base}{path}"
    data = None
    if method == "GET":
        url = f"{url}?{query}" if query else url
    else:
        data = query.encode()
    return request_json(
        url,
        method=method,
        data=data,
        headers={
            "Authorization": f"Bearer {SECRET_KEY}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        timeout=10,
        what=f"localstripe {method} {path}",
    )


def _flatten(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's form encoding: `card[number]=...`, `events[0]=...`."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            pairs += _flatten(value, name)
        elif isinstance(value, list | tuple):
            pairs += _flatten({str(i): item for i, item in enumerate(value)}, name)
        elif isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        elif value is not None:
            pairs.append((name, str(value)))
    return pairs
