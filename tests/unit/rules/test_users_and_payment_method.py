"""The rules of accounts and users (lifecycle.md, "Accounts and users") and of a new payment
method ("While an integration is past_due"): pure, with real dates."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lifecycle.rules.calendar import utc
from lifecycle.rules.errors import LastBillingUser
from lifecycle.rules.model import STRIPE, AccountStatus, BillingState, DetailType, Status, user
from lifecycle.rules.payment_method import payment_method_changed, retries_now, retry_now
from lifecycle.rules.renewal import DueKind, due_entry
from lifecycle.rules.users import UserStatus, invite, open_account, remove, set_billing_access
from tests.factories import account, integration

NOW = utc(2026, 11, 21, 10)
OWNER = user("owner-sub")


def test_a_sign_up_opens_an_active_free_account_whose_first_user_has_billing_access():
    opening = open_account("acc_new", "usr_first", "owner-sub", "owner@acme.example", NOW)

    assert opening.account.status is AccountStatus.ACTIVE
    assert (opening.account.stripe_customer_id, opening.account.has_payment_method) == (None, False)
    assert opening.account.version == 1
    assert opening.user.billing_access and opening.user.status is UserStatus.ACTIVE
    assert [e.detail_type for e in opening.events] == [DetailType.ACCOUNT_CREATED]
    assert opening.events[0].data == {"user_id": "usr_first"}  # never the email address


def test_an_invited_user_counts_as_a_billing_user_only_with_billing_access():
    member = invite("usr_m", "acc_1", "m-sub", "m@acme.example", False, NOW, OWNER)
    biller = invite("usr_b", "acc_1", "b-sub", "b@acme.example", True, NOW, OWNER)

    assert (member.billing_delta, biller.billing_delta) == (0, 1)
    assert member.after.status is UserStatus.INVITED
    assert [e.detail_type for e in member.events] == [DetailType.USER_INVITED]
    assert dict(member.events[0].data) == {"user_id": "usr_m", "billing_access": False}


def test_revoking_or_removing_the_last_billing_user_is_refused():
    first = open_account("acc_1", "usr_1", "owner-sub", "o@acme.example", NOW).user

    with pytest.raises(LastBillingUser):
        set_billing_access(first, False, billing_users=1, now=NOW, actor=OWNER)
    with pytest.raises(LastBillingUser):
        remove(first, billing_users=1, now=NOW, actor=OWNER)

    demoted = set_billing_access(first, False, billing_users=2, now=NOW, actor=OWNER)
    assert (demoted.after.billing_access, demoted.billing_delta) == (False, -1)
    assert demoted.after.version == first.version + 1


def test_a_member_is_removed_whatever_the_count_and_removing_again_changes_nothing():
    member = invite("usr_m", "acc_1", "m-sub", "m@acme.example", False, NOW, OWNER).after

    removed = remove(member, billing_users=1, now=NOW, actor=OWNER)
    again = remove(removed.after, billing_users=1, now=NOW, actor=OWNER)

    assert removed.after.status is UserStatus.REMOVED and removed.billing_delta == 0
    assert again.noop
    assert set_billing_access(member, False, 1, NOW, OWNER).noop  # already holds


def test_the_payment_method_follows_the_customers_default_and_says_so_once():
    free = account(stripe_customer_id="cus_1", has_payment_method=False)

    added = payment_method_changed(free, "pm_1", NOW, STRIPE)
    assert added is not None
    replaced = payment_method_changed(added.after, "pm_2", NOW, STRIPE)
    assert replaced is not None
    cleared = payment_method_changed(replaced.after, None, NOW, STRIPE)
    assert cleared is not None

    assert (added.after.has_payment_method, added.after.payment_method_id) == (True, "pm_1")
    assert [e.detail_type for e in added.events] == [DetailType.PAYMENT_METHOD_UPDATED]
    assert payment_method_changed(added.after, "pm_1", NOW, STRIPE) is None
    assert (retries_now(added), retries_now(replaced), retries_now(cleared)) == (True, True, False)
    assert (cleared.after.has_payment_method, cleared.after.payment_method_id) == (False, None)


def test_a_new_card_brings_a_past_due_renewal_to_now_and_its_due_entry_with_it():
    late = integration(
        Status.FREEZE_PENDING,
        billing_state=BillingState.PAST_DUE,
        dunning_attempts=1,
        next_attempt_at=utc(2026, 11, 24, 10),
    )

    decision = retry_now(late, NOW, STRIPE)

    assert decision is not None and decision.after is not None
    assert decision.after.next_attempt_at == NOW
    assert (decision.after.status, decision.after.dunning_attempts) == (Status.FREEZE_PENDING, 1)
    assert due_entry(decision.after) == due_entry(replace(late, next_attempt_at=NOW))
    assert due_entry(decision.after).kind is DueKind.RENEWAL  # type: ignore[union-attr]
    assert decision.events == ()  # nothing for the sync engine: nothing changed for it


@pytest.mark.parametrize(
    "changes",
    [
        {},  # not past due
        {"billing_state": BillingState.PAST_DUE, "next_attempt_at": NOW},  # due already
        {"status": Status.SUSPENDED, "billing_state": BillingState.PAST_DUE},
    ],
)
def test_nothing_else_is_brought_forward(changes):
    assert retry_now(integration(**changes), NOW, STRIPE) is None
