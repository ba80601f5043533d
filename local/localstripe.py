"""localstripe (PyPI), the fake Stripe server: run on a free port, and set up customers and cards.

localstripe 1.15.10 lacks a few behaviours of real Stripe that the adapter relies on. Rather than
bend the adapter to the fake, `python -m local.localstripe` runs localstripe's own app with them
added (see `_patch`):

- PaymentIntents take a `description` (localstripe answers 400 "Unexpected description");
- `GET /v1/payment_intents?customer=` filters by customer, newest first (localstripe: 400);
- a declined confirmation's error is a `card_error` carrying the `payment_intent`, as on Stripe;
- with `--idempotency-keys` (the local stack), `Idempotency-Key` replays the first answer as
  Stripe does; without it (the tests), repeated keys charge again, as in localstripe itself;
- a refund (`POST /v1/refunds`) sends the signed `charge.refunded` event Stripe sends
  (localstripe makes the refund silently);
- billing portal sessions (`POST /v1/billing_portal/sessions`, which localstripe lacks): the
  session's `url` opens a local page showing the card on file and a link back to `return_url`
  (the card is changed with `PUT /_local/accounts/{id}/card`);
- Checkout Sessions in setup mode (`POST /v1/checkout/sessions`, which localstripe lacks): the
  session's `url` opens a local page with "Add a test card" and "Add a declining card"; either
  attaches that card to the customer through a succeeded SetupIntent, as Checkout does, and
  sends the signed `checkout.session.completed` Stripe sends, before sending the browser back
  to `success_url` (so the dashboard it returns to shows the card);
- detaching a payment method (`POST /v1/payment_methods/{id}/detach`) sends
  `payment_method.detached` (with `previous_attributes.customer`), and when it was the
  customer's default, clears the default and sends `customer.updated`, as Stripe does;
- data is kept in `--data-file` only, written at most every half second, instead of being
  pickled whole to the shared `/tmp/localstripe.pickle` on every write.

It listens on 127.0.0.1 only, and logs requests only with `--verbose`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import html
import json
import logging
import os
import pickle
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal

from local import processes
from local.template import ROOT

START_TIMEOUT_SECONDS = 30.0
# localstripe accepts any key that starts with `sk_`.
SECRET_KEY = "sk_test_localstripe"  # noqa: S105 - not a secret: any sk_ key works
Card = Literal["ok", "declined"]
# `declined` attaches to the customer, then every charge on it fails (card_declined).
CARD_NUMBERS: dict[str, str] = {"ok": "4242424242424242", "declined": "4000000000000341"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalStripe:
    """One localstripe process on 127.0.0.1; in memory unless a data file is given."""

    def __init__(
        self,
        port: int | None = None,
        data_file: Path | None = None,
        verbose: bool = False,
        *,
        idempotency_keys: bool = False,
    ) -> None:
        self.port = port or free_port()
        self.data_file = data_file
        self.verbose = verbose
        # Off by default, like localstripe itself: the tests prove that the ledger, not the
        # provider's idempotency keys (forgotten by Stripe after 24 h), prevents double charges.
        self.idempotency_keys = idempotency_keys
        self.process: subprocess.Popen[bytes] | None = None
        self.started_in: float | None = None
        # Its output goes to a file, not a pipe: nobody reads a pipe while it runs, and a full
        # pipe would block the server.
        self._log: IO[bytes] | None = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalStripe:
        command = [sys.executable, "-m", "local.localstripe", "--port", str(self.port)]
        if self.data_file is not None:
            self.data_file.parent.mkdir(parents=True, exist_ok=True)
            command += ["--data-file", str(self.data_file)]
        if self.verbose:
            command.append("--verbose")
        if self.idempotency_keys:
            command.append("--idempotency-keys")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        began = time.monotonic()
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT, env=_child_env()
        )
        self._wait_until_ready(began)
        self.started_in = time.monotonic() - began
        return self

    def _wait_until_ready(self, began: float) -> None:
        assert self.process is not None
        while time.monotonic() - began < START_TIMEOUT_SECONDS:
            code = self.process.poll()
            if code is not None:
                output = self._output()
                self.stop()
                raise RuntimeError(f"localstripe exited with {code}: {output}")
            if processes.answers(f"{self.api_base}/v1/customers?limit=1"):
                return
            time.sleep(0.05)
        output = self._output()
        self.stop()
        raise RuntimeError(f"localstripe did not answer within {START_TIMEOUT_SECONDS} s: {output}")

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process is not None:
            processes.stop(self.process)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextlib.contextmanager
def running(data_file: Path | None = None) -> Iterator[str]:
    """The API base of a localstripe to use: `STRIPE_API_BASE` when set, otherwise one started
    here (and stopped on exit)."""
    existing = os.environ.get("STRIPE_API_BASE")
    if existing:
        yield existing
        return
    server = LocalStripe(data_file=data_file).start()
    try:
        yield server.api_base
    finally:
        server.stop()


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
    request = urllib.request.Request(  # noqa: S310 - local http only
        url,
        data=data,
        method=method,
        headers={
            "Authorization": f"Bearer {SECRET_KEY}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            answer: dict[str, Any] = json.load(response)
            return answer
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"localstripe {method} {path}: {error.code} {error.read()!r}") from error


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


# ---------------------------------------------------------------- the server process


def serve(port: int, data_file: Path | None, verbose: bool, idempotency_keys: bool) -> None:
    from aiohttp import web  # noqa: PLC0415 - only the server process needs aiohttp

    app = _patch(data_file, idempotency_keys)
    access_log = logging.getLogger("aiohttp.access")
    if verbose:
        access_log.setLevel(logging.INFO)
        access_log.addHandler(logging.StreamHandler())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    web.run_app(app, sock=sock, access_log=access_log if verbose else None, print=None)


def _patch(data_file: Path | None, idempotency_keys: bool) -> Any:
    """localstripe's aiohttp app with the behaviours of the module docstring added."""
    from aiohttp import web  # noqa: PLC0415 - only the server process needs these
    from localstripe import resources, server  # type: ignore[import-untyped]  # noqa: PLC0415
    from localstripe.errors import UserError  # type: ignore[import-untyped]  # noqa: PLC0415

    payment_intent = resources.PaymentIntent
    stripe_object = resources.StripeObject

    original_init = payment_intent.__init__

    def init(self: Any, description: Any = None, **data: Any) -> None:
        if description is not None and not isinstance(description, str):
            raise UserError(400, "Bad request")
        original_init(self, **data)
        self.description = description

    def list_all(
        cls: Any,
        /,
        url: str,
        customer: str | None = None,
        limit: Any = None,
        starting_after: str | None = None,
        **data: Any,
    ) -> Any:
        page = stripe_object._api_list_all.__func__(
            cls, url, limit=limit, starting_after=starting_after, **data
        )
        items = [item for item in page._list if customer is None or item.customer == customer]
        # Newest first, as Stripe lists them; creation order breaks ties within a second.
        page._list = [
            item
            for _, item in sorted(
                enumerate(items), key=lambda pair: (pair[1].created, pair[0]), reverse=True
            )
        ]
        return page

    original_report_failure = payment_intent._report_failure

    def report_failure(self: Any) -> None:
        try:
            original_report_failure(self)
        except UserError as error:
            error.body["error"]["type"] = "card_error"
            error.body["error"]["payment_intent"] = self._export()
            raise

    payment_intent.__init__ = init
    payment_intent._api_list_all = classmethod(list_all)
    payment_intent._report_failure = report_failure
    _add_refund_events(resources)

    # Persistence: an explicit file, written from a timer, never the shared /tmp file.
    dirty = False

    def mark_dirty(self: Any) -> None:
        nonlocal dirty
        dirty = True

    def flush() -> None:
        nonlocal dirty
        if data_file is None or not dirty:
            return
        dirty = False
        partial = data_file.with_suffix(data_file.suffix + ".partial")
        with partial.open("wb") as file:
            pickle.dump(dict(resources.store), file, protocol=pickle.HIGHEST_PROTOCOL)
        partial.replace(data_file)

    resources.Store.dump_to_disk = mark_dirty
    resources.Store.try_load_from_disk = lambda self: None
    if data_file is not None and data_file.exists():
        with data_file.open("rb") as file:
            dict.update(resources.store, pickle.load(file))  # noqa: S301 - our own file

    async def flush_periodically(app: Any) -> Any:
        async def loop() -> None:
            while True:
                await asyncio.sleep(0.5)
                flush()

        task = asyncio.ensure_future(loop())
        yield
        task.cancel()
        flush()

    # Idempotency: Stripe answers a repeated key with the first answer (same parameters) or a
    # 400 idempotency_error (other parameters), and a 409 while the first is in flight.
    answers: dict[tuple[str, str], tuple[str, int, bytes]] = {}
    in_flight: set[tuple[str, str]] = set()

    @web.middleware
    async def idempotency(request: Any, handler: Any) -> Any:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        slot = (request.headers.get("Authorization", ""), key)
        fingerprint = hashlib.sha256(
            request.method.encode() + request.path_qs.encode() + await request.read()
        ).hexdigest()
        if slot in answers:
            first, status, body = answers[slot]
            if first != fingerprint:
                error = UserError(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with.",
                )
                error.body["error"]["type"] = "idempotency_error"
                raise error
            return web.Response(
                body=body,
                status=status,
                content_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        if slot in in_flight:
            raise UserError(409, "There is currently another in-progress request using this key.")
        in_flight.add(slot)
        try:
            try:
                response = await handler(request)
            except UserError as error:
                response = error.to_response()
            if response.status < 500 and response.status != 429:
                answers[slot] = (fingerprint, response.status, response.body)
            return response
        finally:
            in_flight.discard(slot)

    app = server.app
    _add_billing_portal(app, server, resources, UserError)
    _add_checkout(app, server, resources, UserError)
    _add_detach_events(app, resources)
    if idempotency_keys:
        app.middlewares.append(idempotency)
    app.cleanup_ctx.append(flush_periodically)
    return app


def _add_refund_events(resources: Any) -> None:
    """Stripe sends `charge.refunded` (the charge, with its refunds) when a refund is made."""
    from localstripe.webhooks import schedule_webhook  # type: ignore[import-untyped]  # noqa: PLC0415

    refund = resources.Refund
    original_init = refund.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        charge = resources.Charge._api_retrieve(self.charge)
        schedule_webhook(resources.Event("charge.refunded", charge))

    refund.__init__ = init


def _add_billing_portal(app: Any, server: Any, resources: Any, user_error: Any) -> None:
    """`POST /v1/billing_portal/sessions` as Stripe answers it, and the page its `url` opens.
    Sessions live in memory, as short-lived as Stripe's (they expire after minutes there)."""
    from aiohttp import web  # noqa: PLC0415 - only the server process needs aiohttp

    sessions: dict[str, dict[str, Any]] = {}

    async def create(request: Any) -> Any:
        data = await server.get_post_data(request) or {}
        customer_id = data.get("customer")
        if not isinstance(customer_id, str) or not customer_id:
            raise user_error(400, "Missing required param: customer.")
        resources.Customer._api_retrieve(customer_id)  # 404 for an unknown customer
        return_url = data.get("return_url")
        session_id = f"bps_{secrets.token_hex(12)}"
        session = {
            "id": session_id,
            "object": "billing_portal.session",
            "configuration": "bpc_local",
            "created": int(time.time()),
            "customer": customer_id,
            "flow": None,
            "livemode": False,
            "locale": None,
            "on_behalf_of": None,
            "return_url": return_url if isinstance(return_url, str) else None,
            # Under /_config/: the one prefix localstripe serves without an API key, as Stripe
            # serves the portal to a browser that has none.
            "url": f"{request.scheme}://{request.host}/_config/billing_portal/{session_id}",
        }
        sessions[session_id] = session
        return web.json_response(session)

    async def page(request: Any) -> Any:
        session = sessions.get(request.match_info["id"])
        if session is None:
            return web.Response(status=404, text="This billing portal session has expired.")
        card = _card_on_file(resources, session["customer"])
        back = session.get("return_url") or ""
        link = (
            f'<p><a href="{html.escape(back)}">Return to the dashboard</a></p>'
            if back.startswith(("http://", "https://"))
            else ""
        )
        body = (
            "<!doctype html><html lang=en><meta charset=utf-8>"
            "<title>Billing portal (local)</title>"
            "<h1>Billing portal (local)</h1>"
            f"<p>Customer {html.escape(session['customer'])}.</p>"
            f"<p>Card on file: {html.escape(card)}.</p>"
            "<p>localstripe has no billing portal: this page stands in for Stripe's. To change "
            "the card locally, <code>PUT /_local/accounts/{account_id}/card</code> with "
            '<code>{"card": "ok"}</code> or <code>{"card": "declined"}</code>.</p>'
            f"{link}</html>"
        )
        return web.Response(text=body, content_type="text/html")

    app.router.add_post("/v1/billing_portal/sessions", create)
    app.router.add_get("/_config/billing_portal/{id}", page)


class _Exported:
    """An object localstripe's `Event` can carry: what `_export()` answers."""

    def __init__(self, exported: dict[str, Any]) -> None:
        self._exported = exported

    def _export(self, expand: Any = None) -> dict[str, Any]:
        return dict(self._exported)


def _add_detach_events(app: Any, resources: Any) -> None:
    """Stripe sends `payment_method.detached` (the payment method, its former customer in
    `previous_attributes`); detaching the customer's default also clears the default. A
    middleware around localstripe's own route (its handler was bound when it was imported)."""
    import re  # noqa: PLC0415

    from aiohttp import web  # noqa: PLC0415 - only the server process needs aiohttp
    from localstripe.webhooks import schedule_webhook  # noqa: PLC0415

    route = re.compile(r"^/v1/payment_methods/(?P<id>pm_\w+)/detach$")

    @web.middleware
    async def detach_events(request: Any, handler: Any) -> Any:
        found = route.match(request.path) if request.method == "POST" else None
        if found is None:
            return await handler(request)
        method_id = found.group("id")
        try:
            customer_id = resources.PaymentMethod._api_retrieve(method_id).customer
        except Exception:  # the handler answers the 404 itself
            customer_id = None
        response = await handler(request)
        if response.status != 200 or not customer_id:
            return response
        event = resources.Event(
            "payment_method.detached", resources.PaymentMethod._api_retrieve(method_id)
        )
        event.data["previous_attributes"] = {"customer": customer_id}
        schedule_webhook(event)
        customer = resources.Customer._api_retrieve(customer_id)
        settings = getattr(customer, "invoice_settings", None) or {}
        if settings.get("default_payment_method") == method_id:
            customer.invoice_settings = {**settings, "default_payment_method": None}
            schedule_webhook(resources.Event("customer.updated", customer))
        return response

    app.middlewares.append(detach_events)


def _add_checkout(app: Any, server: Any, resources: Any, user_error: Any) -> None:
    """`POST /v1/checkout/sessions` (setup mode) as Stripe answers it, and the page its `url`
    opens. Sessions live in memory, as the billing portal's (Stripe's expire after a day)."""
    from aiohttp import web  # noqa: PLC0415 - only the server process needs aiohttp
    from localstripe import webhooks  # noqa: PLC0415

    sessions: dict[str, dict[str, Any]] = {}

    async def create(request: Any) -> Any:
        data = await server.get_post_data(request) or {}
        if data.get("mode") != "setup":
            raise user_error(400, "The local Checkout stand-in serves setup mode only.")
        customer_id = data.get("customer")
        if not isinstance(customer_id, str) or not customer_id:
            raise user_error(400, "Missing required param: customer.")
        resources.Customer._api_retrieve(customer_id)  # 404 for an unknown customer
        for name in ("success_url", "currency"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise user_error(400, f"Missing required param: {name}.")
        session_id = f"cs_test_{secrets.token_hex(16)}"
        intent_data = data.get("setup_intent_data")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "cancel_url": data.get("cancel_url"),
            "client_reference_id": data.get("client_reference_id"),
            "created": int(time.time()),
            "currency": data["currency"],
            "customer": customer_id,
            "expires_at": int(time.time()) + 24 * 3600,
            "livemode": False,
            "metadata": data.get("metadata") or {},
            "mode": "setup",
            "payment_intent": None,
            "payment_method_types": ["card"],
            "payment_status": "no_payment_required",
            "setup_intent": None,
            "status": "open",
            "success_url": data["success_url"],
            "ui_mode": "hosted",
            "url": f"{request.scheme}://{request.host}/_config/checkout/{session_id}",
            "_setup_metadata": (intent_data or {}).get("metadata") or {}
            if isinstance(intent_data, dict)
            else {},
        }
        sessions[session_id] = session
        return web.json_response(_public(session))

    async def page(request: Any) -> Any:
        session = sessions.get(request.match_info["id"])
        if session is None:
            return web.Response(status=404, text="This Checkout Session has expired.")
        if session["status"] != "open":
            return web.Response(status=410, text="This Checkout Session is complete.")
        action = html.escape(f"/_config/checkout/{session['id']}/complete")
        forms = "".join(
            f'<form method="post" action="{action}"><input type="hidden" name="card"'
            f' value="{card}"><button type="submit">{label}</button></form>'
            for card, label in (("ok", "Add a test card"), ("declined", "Add a declining card"))
        )
        back = session.get("cancel_url") or ""
        cancel = (
            f'<p><a href="{html.escape(back)}">Cancel and return</a></p>'
            if back.startswith(("http://", "https://"))
            else ""
        )
        body = (
            "<!doctype html><html lang=en><meta charset=utf-8>"
            "<title>Add a payment method (local Checkout)</title>"
            "<h1>Add a payment method</h1>"
            "<p>localstripe has no Checkout: this page stands in for Stripe's. The test card"
            " (4242 4242 4242 4242) pays; the declining card is saved, then every charge on it"
            " is declined.</p>"
            f"{forms}{cancel}</html>"
        )
        return web.Response(text=body, content_type="text/html")

    async def complete(request: Any) -> Any:
        session = sessions.get(request.match_info["id"])
        if session is None or session["status"] != "open":
            return web.Response(status=410, text="This Checkout Session is not open.")
        form = await request.post()
        card = form.get("card")
        if card not in CARD_NUMBERS:
            return web.Response(status=400, text="Choose a card.")
        method = resources.PaymentMethod(
            type="card",
            card={
                "number": CARD_NUMBERS[card],
                "exp_month": "12",
                "exp_year": str(time.gmtime().tm_year + 3),
                "cvc": "123",
            },
        )
        resources.PaymentMethod._api_attach(method.id, customer=session["customer"])
        intent = resources.SetupIntent(
            customer=session["customer"], metadata=dict(session["_setup_metadata"])
        )
        intent._attach_pm(method)  # succeeded: neither card needs authentication
        session.update({"status": "complete", "setup_intent": intent.id})
        resources.store.dump_to_disk()
        event = resources.Event("checkout.session.completed", _Exported(_public(session)))
        # Delivered before the browser goes back: the page it returns to shows the card.
        await webhooks._send_webhook(event)
        if "application/json" in request.headers.get("Accept", ""):
            return web.json_response(_public(session))
        raise web.HTTPSeeOther(location=session["success_url"])

    app.router.add_post("/v1/checkout/sessions", create)
    app.router.add_get("/_config/checkout/{id}", page)
    app.router.add_post("/_config/checkout/{id}/complete", complete)


def _public(session: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in session.items() if not key.startswith("_")}


def _card_on_file(resources: Any, customer_id: str) -> str:
    """`visa ending 4242`, or `none` (best effort over localstripe's objects)."""
    try:
        customer = resources.Customer._api_retrieve(customer_id)
        settings = getattr(customer, "invoice_settings", None) or {}
        method_id = settings.get("default_payment_method") if isinstance(settings, dict) else None
        if not method_id:
            return "none"
        card = resources.PaymentMethod._api_retrieve(method_id).card
        return f"{card.get('brand', 'card')} ending {card.get('last4', '????')}"
    except Exception:  # a display detail: never fail the page over it
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--data-file", type=Path, default=None)
    parser.add_argument("--verbose", action="store_true", help="log requests and webhooks")
    parser.add_argument(
        "--idempotency-keys", action="store_true", help="replay answers to repeated keys, as Stripe"
    )
    args = parser.parse_args(argv)
    serve(args.port, args.data_file, args.verbose, args.idempotency_keys)
    return 0


if __name__ == "__main__":
    sys.exit(main())
