"""What a payment pays for (rules/paid.py): the thing bought names one ledger line, and a paid
action applies to the state as it is now, or says why it no longer does (then it is refunded)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lifecycle.rules.calendar import add_month, utc
from lifecycle.rules.errors import AccountNotActive, QuoteStale
from lifecycle.rules.model import (
    AccountStatus,
    BillingState,
    DetailType,
    Status,
    SuspensionReason,
    user,
)
from lifecycle.rules.paid import (
    AccountReactivationPaid,
    Applied,
    CreatePaid,
    NotApplicable,
    ReinstatePaid,
    RenewalPaid,
    UnfreezePaid,
    apply_paid,
    ledger_key,
    quote_of,
    subject_ids,
)
from tests.factories import ANCHOR, CATALOG, account, integration, past_due

ALICE = user("alice")
NOW = ANCHOR + timedelta(days=10)
SUSPENDED_AT = add_month(ANCHOR, 1)


def apply(action, subject_account=None, *subjects, amount=4000, at=NOW):
    return apply_paid(
        action,
        account=subject_account or account(),
        integrations={s.id: s for s in subjects},
        amount=amount,
        now=at,
        actor=ALICE,
        catalog=CATALOG,
    )


# ---- the thing bought -------------------------------------------------------------------


def test_each_paid_action_names_the_change_it_buys():
    start = utc(2026, 11, 21, 10)
    assert ledger_key("acc_1", CreatePaid("int_1", "n", "s", "c", "standard")) == "create:int_1"
    assert (
        ledger_key("acc_1", UnfreezePaid("int_1", start, "quo_a"))
        == "unfreeze:int_1:2026-11-21T10:00:00Z"
    )
    assert (
        ledger_key("acc_1", ReinstatePaid("int_1", start, "quo_a"))
        == "reinstate:int_1:2026-11-21T10:00:00Z"
    )
    assert (
        ledger_key("acc_1", AccountReactivationPaid(start, ("int_1",), "quo_a"))
        == "account-reactivation:acc_1:2026-11-21T10:00:00Z"
    )
    assert ledger_key("acc_1", RenewalPaid("int_1", start)) == "renewal:int_1:2026-11-21T10:00:00Z"


def test_two_quotes_for_the_same_change_share_one_ledger_key():
    start = utc(2026, 11, 21, 10)
    first = ledger_key("acc_1", UnfreezePaid("int_1", start, "quo_first"))
    second = ledger_key("acc_1", UnfreezePaid("int_1", start, "quo_second"))
    assert first == second
    # Another period, another change: another line.
    assert ledger_key("acc_1", UnfreezePaid("int_1", add_month(start, 1), "quo_x")) != first


def test_subjects_and_quotes_of_paid_actions():
    start = utc(2026, 11, 21, 10)
    assert subject_ids(AccountReactivationPaid(start, ("int_1", "int_2"), "q")) == (
        "int_1",
        "int_2",
    )
    assert subject_ids(RenewalPaid("int_9", start)) == ("int_9",)
    assert quote_of(UnfreezePaid("int_1", start, "quo_1")) == "quo_1"
    assert quote_of(AccountReactivationPaid(start, (), "quo_2")) == "quo_2"
    assert quote_of(RenewalPaid("int_1", start)) is None
    assert quote_of(CreatePaid("int_1", "n", "s", "c", "starter")) is None


# ---- applied, or why not -------------------------------------------------------------------


def test_an_unfreeze_applies_to_the_frozen_period_it_was_bought_for():
    frozen = integration(Status.FROZEN)
    result = apply(UnfreezePaid(frozen.id, frozen.current_period_start, "quo_1"), None, frozen)
    assert isinstance(result, Applied)
    assert result.integration.after.status is Status.ACTIVE
    assert result.integration.after.version == frozen.version + 1
    assert [e.detail_type for e in result.events] == [DetailType.INTEGRATION_REACTIVATED]
    assert result.events[0].data["amount"] == 4000
    assert (result.events[0].at, result.integration.history[0].actor) == (NOW, "user:alice")
    assert result.account is None


@pytest.mark.parametrize(
    "now_state",
    [
        "cancelled meanwhile",
        "already unfrozen",
        "deleted",
        "the next period",
    ],
)
def test_an_unfreeze_that_no_longer_applies_is_stale(now_state):
    frozen = integration(Status.FROZEN)
    action = UnfreezePaid(frozen.id, frozen.current_period_start, "quo_1")
    current = {
        "cancelled meanwhile": integration(Status.CANCEL_PENDING, cancelled_from=Status.FROZEN),
        "already unfrozen": integration(Status.ACTIVE),
        "deleted": None,
        "the next period": integration(Status.FROZEN, period_index=1),
    }[now_state]
    result = apply(action, None, *([current] if current else []))
    assert isinstance(result, NotApplicable)
    assert isinstance(result.error, QuoteStale)
    assert result.error.extra == {"current_status": current.status.value if current else "deleted"}


@pytest.mark.parametrize("status", [AccountStatus.CANCEL_PENDING, AccountStatus.DISABLED])
def test_a_paid_reactivation_in_an_account_that_stopped_meanwhile_is_refused(status):
    frozen = integration(Status.FROZEN)
    action = UnfreezePaid(frozen.id, frozen.current_period_start, "quo_1")
    result = apply(action, account(status=status), frozen)
    assert isinstance(result, NotApplicable)
    assert isinstance(result.error, AccountNotActive)


def test_a_reinstatement_applies_to_the_suspension_it_was_bought_for():
    suspended = integration(
        Status.SUSPENDED, suspension_reason=SuspensionReason.NON_PAYMENT, suspended_at=SUSPENDED_AT
    )
    result = apply(ReinstatePaid(suspended.id, SUSPENDED_AT, "quo_1"), None, suspended, amount=4900)
    assert isinstance(result, Applied)
    after = result.integration.after
    assert (after.status, after.anchor, after.current_period_start) == (Status.ACTIVE, NOW, NOW)
    assert result.integration.history[0].actor == "user:alice"
    assert result.events[0].data == {"amount": 4900}


def test_a_reinstatement_of_another_suspension_is_stale():
    later = integration(
        Status.SUSPENDED,
        suspension_reason=SuspensionReason.NON_PAYMENT,
        suspended_at=SUSPENDED_AT + timedelta(days=40),
    )
    result = apply(ReinstatePaid(later.id, SUSPENDED_AT, "quo_1"), None, later)
    assert isinstance(result, NotApplicable) and isinstance(result.error, QuoteStale)


def test_a_create_applies_once_and_reopens_a_disabled_account():
    action = CreatePaid("int_new", "Feed", "acme", "shopify", "standard")
    result = apply(action, account(status=AccountStatus.DISABLED))
    assert isinstance(result, Applied)
    assert result.integration.after.id == "int_new"
    assert (result.integration.after.created_at, result.integration.history[0].actor) == (
        NOW,
        "user:alice",
    )
    assert result.account.activity[0].actor == "user:alice"
    assert result.integration.charge is None  # paid already: nothing more to collect
    assert result.account.after.status is AccountStatus.ACTIVE
    existing = integration(Status.ACTIVE, integration_id="int_new")
    assert isinstance(apply(action, None, existing), NotApplicable)
    refused = apply(action, account(status=AccountStatus.CANCEL_PENDING))
    assert isinstance(refused, NotApplicable) and isinstance(refused.error, AccountNotActive)


def test_an_account_reactivation_applies_to_the_same_disabled_account_and_integrations():
    disabled_at = NOW - timedelta(days=2)
    closed = account(status=AccountStatus.DISABLED, status_changed_at=disabled_at)
    subjects = [
        integration(Status.SUSPENDED, integration_id="int_a", suspended_at=SUSPENDED_AT),
        integration(Status.SUSPENDED, integration_id="int_b", suspended_at=SUSPENDED_AT),
    ]
    action = AccountReactivationPaid(disabled_at, ("int_a", "int_b"), "quo_1")
    result = apply(action, closed, *subjects, amount=9800)
    assert isinstance(result, Applied)
    assert result.account.after.status is AccountStatus.ACTIVE
    assert result.account.after.status_changed_at == NOW
    assert sorted(d.after.id for d in result.account.integrations) == ["int_a", "int_b"]
    assert {d.history[0].actor for d in result.account.integrations} == {"user:alice"}
    assert result.account.events[0].data["amount"] == 9800
    assert result.account.charge is None
    # One of them gone since (cancelled: deleted at once): the quote's set changed.
    assert isinstance(apply(action, closed, subjects[0], amount=9800), NotApplicable)
    # Disabled again later (another cancellation): another change.
    again = account(status=AccountStatus.DISABLED, status_changed_at=NOW)
    assert isinstance(apply(action, again, *subjects, amount=9800), NotApplicable)
    # Reactivated meanwhile.
    assert isinstance(apply(action, account(), *subjects, amount=9800), NotApplicable)


def test_a_renewal_applies_to_its_period_at_its_price():
    active = integration(Status.ACTIVE)
    end = active.current_period_end
    result = apply(RenewalPaid(active.id, end), None, active, amount=4900, at=end)
    assert isinstance(result, Applied)
    assert result.integration.after.current_period_start == end
    assert result.events[-1].at == end and result.events[-1].data["amount"] == 4900


@pytest.mark.parametrize(
    ("current", "amount"),
    [
        (integration(Status.FREEZE_PENDING), 4900),  # frozen fee now: another price
        (integration(Status.ACTIVE, period_index=1), 4900),  # renewed already
        (integration(Status.CANCEL_PENDING), 4900),  # cancelled meanwhile
    ],
)
def test_a_renewal_that_no_longer_applies_is_refunded(current, amount):
    start = integration(Status.ACTIVE).current_period_end
    result = apply(RenewalPaid(current.id, start), None, current, amount=amount, at=start)
    assert isinstance(result, NotApplicable)


def test_a_renewal_in_a_cancelling_account_is_refused():
    active = integration(Status.ACTIVE)
    end = active.current_period_end
    result = apply(
        RenewalPaid(active.id, end),
        account(status=AccountStatus.CANCEL_PENDING),
        active,
        amount=4900,
        at=end,
    )
    assert isinstance(result, NotApplicable)
    assert isinstance(result.error, AccountNotActive)


def test_a_past_due_renewal_paid_later_clears_past_due():
    unpaid = past_due(Status.ACTIVE)
    end = unpaid.current_period_end
    result = apply(RenewalPaid(unpaid.id, end), None, unpaid, amount=4900, at=end)
    assert isinstance(result, Applied)
    assert result.integration.after.billing_state is BillingState.OK
