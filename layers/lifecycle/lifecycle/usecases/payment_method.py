"""The account's payment method: added through Stripe Checkout (setup mode), confirmed by Stripe's
webhooks (lifecycle.md, "Accounts and users").

- `add_payment_method`: the Checkout Session URL for a billing user. The account's Stripe
  customer is created on first need, with the account id in its metadata and an idempotency key
  per account; the account records it conditionally, so two requests at once end with one
  customer on the account (the loser's, if Stripe made a second one, is never used).
- `on_event`: `checkout.session.completed` (setup mode: its SetupIntent's payment method becomes
  the customer's default), `customer.updated` and `payment_method.detached`. Each reads the
  customer from Stripe as it is now and sets `has_payment_method` to whether it has a default
  payment method: events in any order converge. A customer whose metadata names no account of
  this system is not ours (ignored); one that names an account whose customer it is not is a
  mismatch (nothing changes, logged and counted by the webhook). Objects are matched by id,
  never by a name or an email address.
- A new payment method brings every past-due renewal of the account forward to the next
  renewal sweep (`rules.payment_method.retry_now`), in the transaction that records it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from lifecycle.ids import is_account_id
from lifecycle.observability import record_events
from lifecycle.payments.port import CustomerState, SetupRequest
from lifecycle.rules.errors import Conflict, NotFound
from lifecycle.rules.model import STRIPE, Account, Decision
from lifecycle.rules.payment_method import payment_method_changed, retries_now, retry_now
from lifecycle.store.repository import TRANSACTION_LIMIT
from lifecycle.usecases.caller import Caller
from lifecycle.usecases.services import Services
from lifecycle.usecases.views import CheckoutView

EVENTS = ("checkout.session.completed", "customer.updated", "payment_method.detached")
_ATTEMPTS = 5
# Writes of the account's own change (the account, an activity line, its event), and of each
# past-due integration brought forward (the integration and a history line).
_ACCOUNT_WRITES = 3
_WRITES_PER_RETRY = 2


def add_payment_method(services: Services, caller: Caller, return_url: str) -> CheckoutView:
    """A Stripe Checkout Session (setup mode) where a billing user adds or replaces the card;
    the browser comes back to `return_url` either way."""
    caller.require_billing()
    account = services.store.get_account(caller.account_id)
    if account is None:
        raise NotFound("This account does not exist.")
    customer = ensure_customer(services, account)
    url = services.payments.setup_session_url(
        SetupRequest(
            customer_id=customer,
            account_id=account.id,
            currency=account.currency,
            success_url=return_url,
            cancel_url=return_url,
        )
    )
    return CheckoutView(url=url)


def ensure_customer(services: Services, account: Account) -> str:
    """The account's Stripe customer, created on first need (see the module docstring)."""
    if account.stripe_customer_id:
        return account.stripe_customer_id
    customer = services.payments.create_customer(
        account_id=account.id, idempotency_key=f"customer:{account.id}"
    )
    if services.store.set_customer(account.id, customer):
        return customer
    fresh = services.store.get_account(account.id)
    if fresh is None or not fresh.stripe_customer_id:
        raise NotFound("This account does not exist.")
    return fresh.stripe_customer_id  # another request recorded its customer first


def on_event(services: Services, event_type: str, event: Mapping[str, Any]) -> str:
    """Apply one verified payment-method event; what was done (`mismatch:...` when the event
    does not match the account it names)."""
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping):
        return "malformed"
    if event_type == "checkout.session.completed":
        return _setup_completed(services, obj)
    if event_type == "customer.updated":
        customer_id = _id(obj.get("id"), "cus_")
    else:  # payment_method.detached: the customer it was detached from
        previous = data.get("previous_attributes") if isinstance(data, Mapping) else None
        customer_id = _id((previous or {}).get("customer"), "cus_") or _id(
            obj.get("customer"), "cus_"
        )
    if customer_id is None:
        return "ignored:no_customer"
    state = services.payments.customer_state(customer_id)
    account, why = _account_of(services, customer_id, state)
    if account is None or state is None:
        return why
    return _sync(services, account, state)


def _setup_completed(services: Services, session: Mapping[str, Any]) -> str:
    """A setup session completed: its SetupIntent's payment method becomes the default."""
    if session.get("mode") != "setup":
        return "ignored:not_setup"
    customer_id = _id(session.get("customer"), "cus_")
    setup_intent = _id(session.get("setup_intent"), "seti_")
    if customer_id is None or setup_intent is None:
        return "ignored:no_customer"
    state = services.payments.customer_state(customer_id)
    account, why = _account_of(services, customer_id, state)
    if account is None:
        return why
    metadata = session.get("metadata")
    claimed = metadata.get("account_id") if isinstance(metadata, Mapping) else None
    claimed = claimed or session.get("client_reference_id")
    if claimed is not None and claimed != account.id:
        return "mismatch:account"
    setup = services.payments.setup_result(setup_intent)
    if setup is None or setup.customer_id != customer_id:
        return "mismatch:setup_intent"
    if setup.status != "succeeded" or not setup.payment_method:
        return "setup_incomplete"
    services.payments.set_default_payment_method(
        customer_id=customer_id, payment_method_id=setup.payment_method
    )
    fresh = services.payments.customer_state(customer_id)
    if fresh is None:
        return "unknown_customer"
    return _sync(services, account, fresh)


def _account_of(
    services: Services, customer_id: str, state: CustomerState | None
) -> tuple[Account | None, str]:
    """The account whose customer this is; otherwise None and why: not ours (no such customer,
    or no account in its metadata), or a mismatch (it names an account that is not its)."""
    if state is None or state.account_id is None:
        return None, "unknown_customer"
    if not is_account_id(state.account_id):
        return None, "mismatch:customer"
    account = services.store.get_account(state.account_id)
    if account is None or account.stripe_customer_id != customer_id:
        return None, "mismatch:customer"
    return account, ""


def _sync(services: Services, account: Account, state: CustomerState) -> str:
    """Record the customer's default payment method on the account (and, when it is new,
    bring the account's past-due renewals forward), from the account as stored now."""
    store = services.store
    default = None if state.deleted else state.default_payment_method
    for _ in range(_ATTEMPTS):
        now = services.clock.now()
        decision = payment_method_changed(account, default, now, STRIPE)
        if decision is None:
            return "unchanged"
        retries: list[Decision] = []
        if retries_now(decision):
            retries = [
                found
                for integration in store.all_integrations(account.id)
                if (found := retry_now(integration, now, STRIPE)) is not None
            ]
        first = (TRANSACTION_LIMIT - _ACCOUNT_WRITES) // _WRITES_PER_RETRY
        try:
            store.commit(account=replace(decision, integrations=tuple(retries[:first])))
        except Conflict:
            fresh = store.get_account(account.id)
            if fresh is None:
                return "gone"
            account = fresh
            continue
        _retry_rest(services, retries[first:])
        record_events(decision.events)
        done = "set" if default else "cleared"
        return f"payment_method:{done}:retries={len(retries)}"
    raise Conflict("The account kept changing; Stripe will deliver this event again.")


def _retry_rest(services: Services, retries: Sequence[Decision]) -> None:
    """Past-due renewals beyond one transaction, each on its own (one that changed meanwhile
    was renewed or cancelled by something else: left as it is)."""
    for decision in retries:
        try:
            services.store.commit(decision)
        except Conflict:
            continue


def _id(value: Any, prefix: str) -> str | None:
    """An id of Stripe's of the expected kind, from an id or an expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    if isinstance(value, str) and value.startswith(prefix) and len(value) <= 255:
        return value
    return None
