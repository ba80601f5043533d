"""Accounts on the local stack, made the ways production makes them: a sign-up through the user
pool and the real post-confirmation trigger, a card through Stripe Checkout and Stripe's
webhooks, tokens with the claims Cognito would issue."""

from __future__ import annotations

import json
import secrets
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from lifecycle.rules.errors import Conflict
from lifecycle.rules.users import UserStatus
from lifecycle.usecases.services import Services
from lifecycle.usecases.signup import sign_up
from local import userpool
from local.auth import DEFAULT_TTL_SECONDS, Issuer
from local.gateway import Invoke
from local.http_json import request_json
from local.userpool import LocalPool

Card = Literal["ok", "declined"]
# How long the card route waits for Stripe's webhooks to reach the account.
CARD_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class SignedUp:
    """A sign-up: its account, its first user and a token of that user's; the account's Stripe
    customer once it has a card (`create_account`)."""

    account_id: str
    user_id: str
    token: str
    stripe_customer_id: str = ""


@dataclass(frozen=True, slots=True)
class Accounts:
    """Sign-ups, tokens and cards of the stack's accounts.

    `services` are the use cases' services in this process (`/_local/accounts` with a chosen
    id); `invoke` runs a function as the stack does; `await_webhooks` returns once Stripe's
    webhooks sent so far were handled."""

    issuer: Issuer
    cognito: Any
    pool: LocalPool
    services: Services
    invoke: Invoke
    api_url: str
    await_webhooks: Callable[[], object]

    def sign_up(self, email: str, account_id: str | None = None) -> SignedUp:
        """A sign-up as Cognito confirms it: the user in the pool, confirmed, then the real
        post-confirmation handler run with Cognito's event (with `account_id`, the sign-up use
        case itself, in this process: Cognito's event cannot choose an account id). Raises
        `Conflict` for an address that is a user already, or an account id that is taken."""
        if account_id is not None and self.services.store.get_account(account_id) is not None:
            raise Conflict(f"Account {account_id!r} already exists.")
        try:
            username = userpool.sign_up(self.cognito, self.pool, email)
        except self.cognito.exceptions.UsernameExistsException:
            raise Conflict("This email address is a user already.") from None
        if account_id is None:
            event = userpool.confirmation_event(self.cognito, self.pool, username)
            self.invoke(userpool.trigger_function(), event)
        else:
            sign_up(self.services, username, email, account_id=account_id)
        found = self.services.store.login(username)
        if found is None:
            raise RuntimeError("the post-confirmation trigger opened no account")
        account, user_id = found
        token, _ = self.token_for_user(user_id) or ("", {})
        return SignedUp(account_id=account, user_id=user_id, token=token)

    def token_for_user(
        self, user_id: str, expires_in: int | None = None
    ) -> tuple[str, dict[str, Any]] | None:
        """A token with the claims Cognito would issue the user now: its account and groups
        from the user pool. None for an unknown or removed user, or one who cannot sign in."""
        account_id = self.services.store.user_account(user_id)
        user = self.services.store.get_user(account_id, user_id) if account_id else None
        if user is None or user.status is UserStatus.REMOVED:
            return None
        found = userpool.identity(self.cognito, self.pool, user.username)
        if found is None or not found.enabled or not found.account_id:
            return None
        return self.issuer.mint(
            found.account_id,
            user_id=found.username,
            groups=found.groups,
            email=found.email,
            expires_in=expires_in or DEFAULT_TTL_SECONDS,
        )

    def create_account(self, account_id: str | None, email: str | None, card: Card) -> SignedUp:
        """An account made the one way there is: a sign-up, then a card added through Stripe
        Checkout (`swap_card`). Conflict when the id or the address is taken."""
        address = email or f"owner-{secrets.token_hex(6)}@example.com"
        signed_up = self.sign_up(address, account_id)
        self.swap_card(signed_up.account_id, card)
        account = self.services.store.get_account(signed_up.account_id)
        assert account is not None
        return replace(signed_up, stripe_customer_id=account.stripe_customer_id or "")

    def swap_card(self, account_id: str, card: Card) -> bool:
        """Make `card` the account's default card the way production does: a billing user's
        `POST /v1/account/payment-method` (the Stripe customer made on first need), the
        Checkout stand-in's "add a test card" or "add a declining card", then Stripe's signed
        webhooks handled by the real webhook function. False when there is no such account."""
        account = self.services.store.get_account(account_id)
        if account is None:
            return False
        before = account.payment_method_id
        token, _ = self.issuer.mint(account_id, billing_access=True)
        session = call_api(
            self.api_url,
            "POST",
            "/v1/account/payment-method",
            {"return_url": f"{self.api_url}/#/account"},
            token,
        )
        _complete_checkout(str(session["url"]), card)
        began = time.monotonic()
        while time.monotonic() - began < CARD_TIMEOUT_SECONDS:
            self.await_webhooks()
            now = self.services.store.get_account(account_id)
            if now is not None and now.has_payment_method and now.payment_method_id != before:
                return True
            time.sleep(0.05)
        raise RuntimeError(f"Stripe's webhooks did not set the card of {account_id}")


def call_api(
    base: str, method: str, path: str, body: dict[str, Any] | None, token: str
) -> dict[str, Any]:
    """A call to the stack's own API (the gateway, the real handlers) with a bearer token."""
    return request_json(
        f"{base}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=60,
        what=f"{method} {path}",
    )


def _complete_checkout(url: str, card: Card) -> None:
    """What a person does on the Checkout stand-in's page: add the test card (or the declining
    one). It answers once Stripe's `checkout.session.completed` was delivered."""
    request = urllib.request.Request(  # noqa: S310 - localstripe's page, local http only
        f"{url}/complete",
        data=urllib.parse.urlencode({"card": card}).encode(),
        method="POST",
        headers={
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        json.load(response)
