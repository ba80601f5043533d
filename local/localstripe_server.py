"""localstripe (PyPI), the fake Stripe server, as the tests and `make dev` run it.

localstripe 1.15.10 lacks a few behaviours of real Stripe that the adapter relies on. Rather than
bend the adapter to the fake, `python -m local.localstripe_server` runs localstripe's own app
with them added (see `_patch`):

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
  pickled whole to the shared `/tmp/localstripe.pickle` on every write;
- with `--webhook-delay` (the local stack: 0.05 s), webhooks are sent that long after the
  request instead of localstripe's fixed second. The business clock waits for the webhooks of
  each schedule slot before running the next one: at a second a slot, a month of integrations
  renewed at different times would take minutes. The order is kept: localstripe still answers
  the request first.

`LocalStripe` runs it as a child process on a free port; `running` uses `STRIPE_API_BASE`
instead when it is set.

It listens on 127.0.0.1 only, and logs requests only with `--verbose`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import html
import logging
import pickle
import secrets
import socket
import sys
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from local.localstripe import CARD_NUMBERS
from local.processes import Child, Supervised, answers, endpoint, free_port, python_env

START_TIMEOUT_SECONDS = 30.0
STACK_WEBHOOK_DELAY_SECONDS = 0.05


class LocalStripe(Supervised):
    """One localstripe process on 127.0.0.1; in memory unless a data file is given."""

    def __init__(
        self,
        port: int | None = None,
        data_file: Path | None = None,
        verbose: bool = False,
        *,
        idempotency_keys: bool = False,
        webhook_delay: float | None = None,
    ) -> None:
        self.port = port or free_port()
        self.data_file = data_file
        self.verbose = verbose
        # Off by default, like localstripe itself: the tests prove that the ledger, not the
        # provider's idempotency keys (forgotten by Stripe after 24 h), prevents double charges.
        self.idempotency_keys = idempotency_keys
        self.webhook_delay = webhook_delay
        self.child: Child | None = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    endpoint = api_base

    def start(self) -> LocalStripe:
        command = [sys.executable, "-m", "local.localstripe_server", "--port", str(self.port)]
        if self.data_file is not None:
            self.data_file.parent.mkdir(parents=True, exist_ok=True)
            command += ["--data-file", str(self.data_file)]
        if self.verbose:
            command.append("--verbose")
        if self.idempotency_keys:
            command.append("--idempotency-keys")
        if self.webhook_delay is not None:
            command += ["--webhook-delay", str(self.webhook_delay)]
        self.child = Child(
            "localstripe",
            command,
            lambda: answers(f"{self.api_base}/v1/customers?limit=1"),
            env=python_env(),
            timeout=START_TIMEOUT_SECONDS,
        )
        self.child.start()
        return self


@contextlib.contextmanager
def running(data_file: Path | None = None) -> Iterator[str]:
    """The API base of a localstripe to use: `STRIPE_API_BASE` when set, otherwise one started
    here (and stopped on exit)."""
    with endpoint("STRIPE_API_BASE", lambda: LocalStripe(data_file=data_file).start()) as found:
        yield found


# ---------------------------------------------------------------- the server process


def shorten_webhook_delay(delay: float) -> None:
    """localstripe's webhook sender sleeps one second before posting: make that `delay`."""
    from localstripe import webhooks  # type: ignore[import-untyped]  # noqa: PLC0415

    def sleep(seconds: float, result: Any = None) -> Coroutine[Any, Any, Any]:
        return asyncio.sleep(min(seconds, delay), result)

    # Only the webhook sender sleeps in that module; the rest of asyncio is untouched.
    webhooks.asyncio = SimpleNamespace(sleep=sleep, ensure_future=asyncio.ensure_future)


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
    from localstripe import resources, server  # noqa: PLC0415
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
        body = _stand_in_page(
            title="Billing portal (local)",
            heading="Billing portal (local)",
            content=f"<p>Customer {html.escape(session['customer'])}.</p>"
            f"<p>Card on file: {html.escape(card)}.</p>"
            "<p>localstripe has no billing portal: this page stands in for Stripe's. To change "
            "the card locally, <code>PUT /_local/accounts/{account_id}/card</code> with "
            '<code>{"card": "ok"}</code> or <code>{"card": "declined"}</code>.</p>',
            back=session.get("return_url"),
            back_label="Return to the dashboard",
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
        body = _stand_in_page(
            title="Add a payment method (local Checkout)",
            heading="Add a payment method",
            content="<p>localstripe has no Checkout: this page stands in for Stripe's. The test"
            " card (4242 4242 4242 4242) pays; the declining card is saved, then every charge on"
            f" it is declined.</p>{forms}",
            back=session.get("cancel_url"),
            back_label="Cancel and return",
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


def _stand_in_page(title: str, heading: str, content: str, back: Any, back_label: str) -> str:
    """A page of Stripe's that localstripe lacks, as this server stands in for it: `content` is
    HTML; `back`, the URL the session was given to return to, is linked when it is a web
    address."""
    link = (
        f'<p><a href="{html.escape(back)}">{back_label}</a></p>'
        if isinstance(back, str) and back.startswith(("http://", "https://"))
        else ""
    )
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{title}</title><h1>{heading}</h1>{content}{link}</html>"
    )


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
    parser.add_argument("--webhook-delay", type=float, default=None, help="seconds (default 1)")
    args = parser.parse_args(argv)
    if args.webhook_delay is not None:
        shorten_webhook_delay(args.webhook_delay)
    serve(args.port, args.data_file, args.verbose, args.idempotency_keys)
    return 0


if __name__ == "__main__":
    sys.exit(main())
