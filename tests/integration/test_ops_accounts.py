"""The runbook's first account (ops/accounts.py) in DynamoDB Local: an active account billed to
its Stripe customer, as the API reads it; an existing id is refused, never overwritten."""

from __future__ import annotations

import pytest

from lifecycle.rules.calendar import utc
from lifecycle.rules.errors import Conflict
from lifecycle.rules.model import AccountStatus
from lifecycle.store.repository import Store
from ops.accounts import create_account

pytestmark = pytest.mark.integration

NOW = utc(2026, 12, 1, 9)


def test_the_first_account_is_active_and_billed_to_its_stripe_customer(store: Store):
    create_account(store, "acc_acme", "cus_Q1w2E3r4", NOW)

    account = store.get_account("acc_acme")
    assert account is not None
    assert account.status is AccountStatus.ACTIVE
    assert account.stripe_customer_id == "cus_Q1w2E3r4"
    assert account.has_payment_method


def test_an_account_that_exists_is_refused_and_kept(store: Store):
    create_account(store, "acc_acme", "cus_first", NOW)

    with pytest.raises(Conflict):
        create_account(store, "acc_acme", "cus_second", NOW)
    account = store.get_account("acc_acme")
    assert account is not None and account.stripe_customer_id == "cus_first"


@pytest.mark.parametrize(("account_id", "customer"), [("acme", "cus_1"), ("acc_1", "sk_live_1")])
def test_ids_of_the_wrong_form_are_refused_before_anything_is_written(
    store: Store, account_id: str, customer: str
):
    with pytest.raises(ValueError):
        create_account(store, account_id, customer, NOW)
