"""Sign-up through Cognito's post-confirmation trigger (its real handler, events/cognito), against
DynamoDB Local and the in-memory directory: one free account per confirmed person, however many
times, or however concurrently, Cognito runs the trigger."""

from __future__ import annotations

import copy
import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from functions.post_confirmation.app import lambda_handler
from lifecycle.directory.fake import FakeDirectory
from lifecycle.rules.model import AccountStatus
from lifecycle.rules.users import UserStatus
from lifecycle.usecases.services import Services
from lifecycle.usecases.signup import on_confirmation
from local.events import LambdaContext
from local.inprocess import claims, invoke
from tests.concurrency import race
from tests.factories import NEW_INTEGRATION
from tests.store_reads import outbox_events, table_items

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parents[3] / "events" / "cognito"
EMAIL = "new.merchant@example.com"


def confirmation(username: str, source: str = "sign-up", **attributes: str) -> dict[str, Any]:
    """Cognito's post-confirmation event for `username`, as the sample has it."""
    event = json.loads((SAMPLES / f"post-confirmation-{source}.json").read_text())
    event["userName"] = username
    event["request"]["userAttributes"].update({"sub": username, **attributes})
    return event


def run(event: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = lambda_handler(
        copy.deepcopy(event), LambdaContext("post-confirmation")
    )
    return answer


def accounts(services: Services) -> list[dict[str, Any]]:
    return [item for item in table_items(services.store) if item["SK"]["S"] == "ACCOUNT"]


def test_a_confirmed_sign_up_opens_a_free_account_whose_first_user_has_billing_access(
    services: Services, directory: FakeDirectory
):
    username = directory.sign_up(EMAIL)
    event = confirmation(username)

    answer = run(event)

    assert answer == event  # Cognito expects its event back
    account_id, user_id = services.store.login(username) or ("", "")
    account = services.store.get_account(account_id)
    assert account is not None
    assert account.status is AccountStatus.ACTIVE
    assert (account.stripe_customer_id, account.has_payment_method) == (None, False)
    assert services.store.all_integrations(account_id) == []
    user = services.store.get_user(account_id, user_id)
    assert user is not None and user_id.startswith("usr_")
    assert (user.email, user.billing_access, user.status) == (EMAIL, True, UserStatus.ACTIVE)
    assert services.store.billing_users(account_id) == 1
    # The directory's part: the tenant claim and the billing group of the tokens to come.
    assert directory.users[username].account_id == account_id
    assert directory.groups(username) == {"billing"}
    # ... in the pool the event names (the trigger cannot be configured with its own pool).
    assert directory.pools == {event["userPoolId"]}
    assert [e["detail-type"] for e in outbox_events(services.store, account_id)] == [
        "AccountCreated"
    ]
    assert outbox_events(services.store, account_id)[0]["detail"]["user_id"] == user_id


def test_the_first_user_sees_an_empty_free_account_and_creating_is_402_to_add_a_card(
    services: Services, directory: FakeDirectory
):
    username = directory.sign_up(EMAIL)
    run(confirmation(username))
    account_id, _ = services.store.login(username) or ("", "")
    token = claims(account_id, username, billing=True)
    before = table_items(services.store)

    status, view = invoke("GET", "/v1/account", token_claims=token)
    created, problem = invoke(
        "POST",
        "/v1/integrations",
        body=NEW_INTEGRATION,
        token_claims=token,
    )

    assert status == 200
    assert (view["status"], view["has_payment_method"], view["next_renewal_at"]) == (
        "active",
        False,
        None,
    )
    assert sum(view["counts"].values()) == 0
    assert (created, problem["code"], problem["payment_method_required"]) == (
        402,
        "payment_failed",
        True,
    )
    assert "Add payment method" in problem["detail"]
    assert table_items(services.store) == before  # nothing was created or charged


def test_the_trigger_run_twice_for_the_same_user_opens_one_account(
    services: Services, directory: FakeDirectory
):
    username = directory.sign_up(EMAIL)
    event = confirmation(username)

    run(event)
    first = services.store.login(username)
    # Cognito retried (the first answer came too late): the event carries the account now.
    run(confirmation(username, **{"custom:account_id": first[0] if first else ""}))
    run(event)

    assert services.store.login(username) == first
    assert len(accounts(services)) == 1
    assert len(outbox_events(services.store, first[0] if first else "")) == 1


def test_the_trigger_run_at_the_same_moment_opens_one_account(
    services: Services, directory: FakeDirectory
):
    for trial in range(5):
        email = f"merchant-{trial}@example.com"
        username = directory.sign_up(email)
        event = confirmation(username, email=email)

        # The use case the handler calls, three times at once, as Lambda runs three
        # invocations in three execution environments (a handler's state is one per process).
        results = race(*[partial(on_confirmation, services, copy.deepcopy(event))] * 3)

        assert sorted(results) == ["already_opened", "already_opened", "opened"]
        account_id, _ = services.store.login(username) or ("", "")
        assert directory.users[username].account_id == account_id
    assert len(accounts(services)) == 5


def test_a_confirmed_password_reset_opens_nothing(services: Services, directory: FakeDirectory):
    username = directory.sign_up(EMAIL)
    before = table_items(services.store)

    run(confirmation(username, source="forgot-password"))

    assert table_items(services.store) == before
    assert directory.users[username].account_id is None


def test_a_user_of_an_account_confirmed_again_opens_no_second_account(
    services: Services, directory: FakeDirectory
):
    """An invited user has an account from the invitation (Cognito runs no trigger for them,
    but an administrator's AdminConfirmSignUp could)."""
    username = directory.sign_up(EMAIL)
    before = table_items(services.store)

    run(confirmation(username, **{"custom:account_id": "acc_other"}))

    assert table_items(services.store) == before
