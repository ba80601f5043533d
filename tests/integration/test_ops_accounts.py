"""The runbook's account repairs (ops/accounts.py) in DynamoDB Local with the in-memory directory:
a sign-up whose trigger failed is finished once, and a user is added to an existing account,
through the same use cases as the trigger and the API."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lifecycle.directory.fake import FakeDirectory
from lifecycle.rules.errors import UserExists
from lifecycle.rules.model import AccountStatus
from lifecycle.store.repository import Store
from ops.accounts import add_user, finish_sign_up, services_of

pytestmark = pytest.mark.integration


@pytest.fixture
def directory() -> FakeDirectory:
    return FakeDirectory()


def test_a_sign_up_whose_trigger_failed_is_finished_once(store: Store, directory: FakeDirectory):
    services = services_of(store.table_name, directory)
    services.store = store
    username = directory.sign_up("owner@acme.example")

    first = finish_sign_up(services, username)
    again = finish_sign_up(services, username)

    assert again == first
    account = store.get_account(first.account_id)
    assert account is not None and account.status is AccountStatus.ACTIVE
    assert directory.users[username].account_id == first.account_id
    assert directory.groups(username) == {"billing"}


def test_an_invited_user_has_no_sign_up_to_finish(store: Store, directory: FakeDirectory):
    services = services_of(store.table_name, directory)
    services.store = store
    username = directory.create_user(email="m@acme.example", account_id="acc_acme")
    # They signed in once: confirmed, and in the account of their invitation.
    directory.users[username] = replace(directory.users[username], confirmed=True)

    with pytest.raises(ValueError, match="belongs to an account"):
        finish_sign_up(services, username)
    with pytest.raises(ValueError, match="no confirmed user"):
        finish_sign_up(services, "no-such-user")


def test_a_user_is_added_to_an_existing_account_once(store: Store, directory: FakeDirectory):
    services = services_of(store.table_name, directory)
    services.store = store
    owner = finish_sign_up(services, directory.sign_up("owner@acme.example"))

    added = add_user(services, owner.account_id, "alice@acme.example", billing_access=True)

    user = store.get_user(owner.account_id, added.user_id)
    assert user is not None and user.billing_access
    assert store.billing_users(owner.account_id) == 2
    with pytest.raises(UserExists):
        add_user(services, owner.account_id, "alice@acme.example", billing_access=True)
    with pytest.raises(ValueError, match="no such account"):
        add_user(services, "acc_nowhere", "bob@acme.example", billing_access=False)
