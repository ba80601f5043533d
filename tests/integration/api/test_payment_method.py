"""Adding a payment method through Stripe Checkout (setup mode) and the webhooks that confirm it,
through the real handlers (DynamoDB Local, the in-memory payments fake): the customer is made
once, the account has a payment method exactly while Stripe has a default one, events about a
customer of another account change nothing, and a new card brings past-due renewals forward."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from lifecycle.clock import FixedClock
from lifecycle.payments.fake import FakePayments
from lifecycle.payments.port import SetupRequest
from lifecycle.rules.calendar import utc
from lifecycle.rules.model import BillingState, Status
from lifecycle.rules.renewal import DueKind
from lifecycle.usecases.caller import Caller
from lifecycle.usecases.payment_method import add_payment_method
from lifecycle.usecases.services import Services
from local.inprocess import claims, invoke
from tests.factories import NEW_INTEGRATION, add_account, integration
from tests.integration.api.test_stripe_webhook import deliver
from tests.store_reads import outbox_events, table_items

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parents[3] / "events" / "stripe"
RETURN_URL = "https://app.example.com/#/account"


@pytest.fixture(autouse=True)
def _secrets(monkeypatch):
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS", "whsec_current_8c2e7")


def checkout(account_id: str = "acc_1", billing: bool = True) -> tuple[int, dict[str, Any]]:
    return invoke(
        "POST",
        "/v1/account/payment-method",
        body={"return_url": RETURN_URL},
        token_claims=claims(account_id, billing=billing),
    )


def event(kind: str, **changes: Any) -> dict[str, Any]:
    """A sample event of events/stripe with a fresh id and `changes` to its object."""
    found = json.loads((SAMPLES / f"{kind}.json").read_text())
    found["id"] = f"evt_{kind.replace('.', '_')}_{next(_ids)}"
    found["data"]["object"].update(changes)
    return found


_ids = iter(range(1, 1_000_000))


def completed(payments: FakePayments, customer: str, card: str = "ok", **changes: Any) -> dict:
    """The customer adds `card` on the Checkout page: Stripe's event for that session."""
    setup_intent, _ = payments.complete_setup(customer, card)
    account_id = payments.customers[customer].account_id
    fields = {
        "customer": customer,
        "setup_intent": setup_intent,
        "metadata": {"account_id": account_id},
        "client_reference_id": account_id,
    }
    return event("checkout.session.completed", **(fields | changes))


def free_account(services: Services, account_id: str = "acc_1"):
    """An account as sign-up opens it: no Stripe customer, no payment method."""
    return add_account(services.store, account_id, card=False)


def test_a_billing_user_gets_a_setup_session_for_a_customer_made_once_with_the_account_id(
    services: Services, payments: FakePayments
):
    free_account(services)

    status, answer = checkout()
    again, second = checkout()

    account = services.store.get_account("acc_1")
    assert account is not None and account.stripe_customer_id is not None
    assert (status, again) == (200, 200)
    assert answer["url"].startswith("https://checkout.example.test/")
    assert second["url"] != answer["url"]  # a session per visit
    assert list(payments.customers) == [account.stripe_customer_id]
    assert payments.customers[account.stripe_customer_id].account_id == "acc_1"
    session = payments.sessions[answer["url"].rsplit("/", 1)[-1]]
    assert session == SetupRequest(
        customer_id=account.stripe_customer_id,
        account_id="acc_1",
        currency="usd",
        success_url=RETURN_URL,
        cancel_url=RETURN_URL,
    )
    assert not account.has_payment_method  # only Stripe's webhook says so


def test_two_requests_at_once_leave_one_customer_on_the_account(
    services: Services, payments: FakePayments
):
    for trial in range(5):
        account_id = f"acc_race_{trial}"
        free_account(services, account_id)
        caller = Caller(account_id, "user_1", billing_access=True)
        start = threading.Barrier(2)
        urls: list[str] = []

        def visit(caller: Caller, start: threading.Barrier, urls: list[str]) -> None:
            start.wait()
            urls.append(add_payment_method(services, caller, RETURN_URL).url)

        threads = [threading.Thread(target=partial(visit, caller, start, urls)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        account = services.store.get_account(account_id)
        assert account is not None and len(urls) == 2
        customers = {payments.sessions[url.rsplit("/", 1)[-1]].customer_id for url in urls}
        assert customers == {account.stripe_customer_id}


def test_a_member_cannot_add_a_payment_method(services: Services, payments: FakePayments):
    free_account(services)
    before = table_items(services.store)

    status, problem = checkout(billing=False)

    assert (status, problem["code"]) == (403, "billing_access_required")
    assert table_items(services.store) == before
    assert payments.customers == {}


def test_setup_completion_sets_the_payment_method_and_then_creating_is_charged_once(
    services: Services, payments: FakePayments
):
    free_account(services)
    checkout()
    customer = services.store.get_account("acc_1").stripe_customer_id  # type: ignore[union-attr]

    status, answer = deliver(completed(payments, customer))
    created, integration_view = invoke(
        "POST",
        "/v1/integrations",
        body=NEW_INTEGRATION,
    )

    account = services.store.get_account("acc_1")
    assert account is not None
    assert (status, answer["result"]) == (200, "payment_method:set:retries=0")
    assert account.has_payment_method
    assert account.payment_method_id == payments.customers[customer].default_payment_method
    assert "PaymentMethodUpdated" in [
        e["detail-type"] for e in outbox_events(services.store, "acc_1")
    ]
    assert created == 201, integration_view
    assert [(c.request.customer_id, c.request.amount) for c in payments.succeeded] == [
        (customer, 2900)
    ]


def test_a_declining_card_added_instead_gives_402_at_create_with_nothing_created(
    services: Services, payments: FakePayments
):
    free_account(services)
    checkout()
    customer = services.store.get_account("acc_1").stripe_customer_id  # type: ignore[union-attr]
    deliver(completed(payments, customer, card="declined"))

    created, problem = invoke(
        "POST",
        "/v1/integrations",
        body=NEW_INTEGRATION,
    )

    assert (created, problem["code"]) == (402, "payment_failed")
    assert services.store.all_integrations("acc_1") == []
    assert payments.succeeded == []


def test_detaching_the_default_payment_method_clears_it(services: Services, payments: FakePayments):
    free_account(services)
    checkout()
    customer = services.store.get_account("acc_1").stripe_customer_id  # type: ignore[union-attr]
    deliver(completed(payments, customer))
    card = payments.customers[customer].default_payment_method
    assert card is not None

    payments.detach(card)
    detached = event("payment_method.detached", id=card, customer=None)
    detached["data"]["previous_attributes"] = {"customer": customer}
    status, answer = deliver(detached)

    account = services.store.get_account("acc_1")
    assert account is not None
    assert (status, answer["result"]) == (200, "payment_method:cleared:retries=0")
    assert (account.has_payment_method, account.payment_method_id) == (False, None)
    created, problem = invoke(
        "POST",
        "/v1/integrations",
        body={"name": "Acme", "supplier": "acme", "channel": "shopify", "plan": "starter"},
    )
    assert (created, problem["payment_method_required"]) == (402, True)


def test_a_customer_update_that_sets_a_default_sets_it_and_repeats_change_nothing(
    services: Services, payments: FakePayments
):
    free_account(services)
    checkout()
    customer = services.store.get_account("acc_1").stripe_customer_id  # type: ignore[union-attr]
    _, card = payments.complete_setup(customer)
    payments.set_default_payment_method(customer_id=customer, payment_method_id=card)

    first = deliver(event("customer.updated", id=customer))
    second = deliver(event("customer.updated", id=customer))

    assert first == (200, {"received": True, "result": "payment_method:set:retries=0"})
    assert second == (200, {"received": True, "result": "unchanged"})
    assert services.store.get_account("acc_1").payment_method_id == card  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "case",
    ["customer of another account", "session of another account", "customer not ours"],
)
def test_events_for_a_customer_that_is_not_the_accounts_change_nothing(
    services: Services, payments: FakePayments, case: str, capsys
):
    free_account(services, "acc_1")
    free_account(services, "acc_2")
    checkout("acc_1")
    checkout("acc_2")
    mine = services.store.get_account("acc_1").stripe_customer_id  # type: ignore[union-attr]
    # A customer whose metadata names acc_1 but is not acc_1's (made elsewhere, or forged).
    stray = payments.create_customer(account_id="acc_1", idempotency_key="elsewhere")
    before = table_items(services.store)
    if case == "customer of another account":
        sent = completed(payments, stray)
        expected = "mismatch:customer"
    elif case == "session of another account":
        sent = completed(
            payments, mine, metadata={"account_id": "acc_2"}, client_reference_id="acc_2"
        )
        expected = "mismatch:account"
    else:
        foreign = payments.create_customer(account_id="", idempotency_key="foreign")
        payments.customers[foreign] = replace(payments.customers[foreign], account_id=None)
        sent = completed(payments, foreign, metadata={})
        expected = "unknown_customer"

    status, answer = deliver(sent)

    assert (status, answer["result"]) == (200, expected)
    after = [i for i in table_items(services.store) if not i["PK"]["S"].startswith("STRIPE_EVENT#")]
    assert after == before
    metrics = capsys.readouterr().out
    assert ('"WebhookMismatch"' in metrics) is expected.startswith("mismatch")


def test_a_new_card_brings_every_past_due_renewal_of_the_account_to_the_next_sweep(
    services: Services, payments: FakePayments, clock: FixedClock
):
    free_account(services)
    checkout()
    customer = services.store.get_account("acc_1").stripe_customer_id  # type: ignore[union-attr]
    # Renewed on 2026-11-19, declined once, next retry on 2026-11-22; the clock is 11-21.
    anchor = utc(2026, 10, 19, 10)
    past_due = [
        integration(
            status,
            integration_id=f"int_late_{n}",
            anchor=anchor,
            billing_state=BillingState.PAST_DUE,
            dunning_attempts=1,
            next_attempt_at=utc(2026, 11, 22, 10),
        )
        for n, status in enumerate((Status.ACTIVE, Status.FREEZE_PENDING))
    ]
    healthy = integration(integration_id="int_fine")
    services.store.load_integrations([*past_due, healthy])

    status, answer = deliver(completed(payments, customer))

    assert (status, answer["result"]) == (200, "payment_method:set:retries=2")
    now = clock.now()
    for item in past_due:
        stored = services.store.get_integration("acc_1", item.id)
        assert stored is not None
        assert stored.next_attempt_at == now
        assert stored.billing_state is BillingState.PAST_DUE
        # Its due-index entry moved to now: the next renewal sweep retries it.
        due = {key.integration_id for key in services.store.due(DueKind.RENEWAL, now)}
        assert item.id in due
    assert services.store.get_integration("acc_1", "int_fine") == healthy


def test_a_setup_session_in_another_mode_or_without_a_setup_intent_is_ignored(
    services: Services, payments: FakePayments
):
    free_account(services)
    checkout()
    customer = services.store.get_account("acc_1").stripe_customer_id  # type: ignore[union-attr]
    before = table_items(services.store)

    payment_mode = deliver(completed(payments, customer, mode="payment"))
    no_intent = deliver(event("checkout.session.completed", customer=customer, setup_intent=None))

    assert payment_mode[1]["result"] == "ignored:not_setup"
    assert no_intent[1]["result"] == "ignored:no_customer"
    after = [i for i in table_items(services.store) if not i["PK"]["S"].startswith("STRIPE_EVENT#")]
    assert after == before
