"""The Account and Quotes sections of lifecycle.md."""

from datetime import timedelta

import pytest

from lifecycle.rules.account import (
    ACCOUNT_TRANSITIONS,
    AccountAction,
    reopen_for_create,
    settle,
)
from lifecycle.rules.calendar import format_instant, utc
from lifecycle.rules.errors import (
    InvalidTransition,
    QuoteExpired,
    QuoteRequired,
    QuoteStale,
    ValidationFailed,
)
from lifecycle.rules.integration import QuoteRef
from lifecycle.rules.model import (
    STRIPE,
    SYSTEM,
    Account,
    AccountStatus,
    Actor,
    BillingState,
    CancelReason,
    DetailType,
    Status,
    SuspensionReason,
    user,
)
from lifecycle.rules.quotes import (
    QUOTE_TTL,
    Quote,
    QuoteLine,
    account_reactivation_lines,
    build_quote,
    check_quote,
    reactivation_line,
)
from tests.factories import (
    ALICE,
    CATALOG,
    END,
    MID,
    account,
    act_on_account,
    integration,
    past_due,
)

BOB = user("bob")
NOW = utc(2027, 3, 2, 12)


def run(subject, action, integrations=(), **command):
    return act_on_account(subject, action, integrations, NOW, **command)


def test_cancel_with_billable_integrations_is_cancel_pending():
    decision = run(
        account(),
        AccountAction.CANCEL,
        [integration(Status.FROZEN)],
        reason=CancelReason.TOO_EXPENSIVE,
    )
    assert decision.after.status is AccountStatus.CANCEL_PENDING
    assert [e.detail_type for e in decision.events] == [DetailType.ACCOUNT_CANCEL_SCHEDULED]
    assert decision.integrations == ()  # each stops at its own period end
    assert decision.charge is None


def test_cancel_with_nothing_billable_is_disabled_at_once():
    only_pending = [
        integration(Status.CANCEL_PENDING),
        integration(Status.SUSPENDED, integration_id="int_2"),
    ]
    decision = run(account(), AccountAction.CANCEL, only_pending, reason=CancelReason.OTHER)
    assert decision.after.status is AccountStatus.DISABLED
    assert [e.detail_type for e in decision.events] == [
        DetailType.ACCOUNT_CANCEL_SCHEDULED,
        DetailType.ACCOUNT_DISABLED,
    ]


def test_cancel_suspends_past_due_integrations_at_once_and_writes_their_charges_off():
    unpaid = past_due(Status.FREEZE_PENDING, attempts=2, retry_at=NOW + timedelta(days=3))
    paying = integration(Status.ACTIVE, integration_id="int_2")
    decision = run(account(), AccountAction.CANCEL, [unpaid, paying], reason=CancelReason.OTHER)
    assert decision.after.status is AccountStatus.CANCEL_PENDING  # int_2 still has a paid period
    (stopped,) = decision.integrations
    assert (stopped.after.id, stopped.after.status, stopped.after.suspension_reason) == (
        unpaid.id,
        Status.SUSPENDED,
        SuspensionReason.ACCOUNT_CANCELLED,
    )
    assert stopped.after.suspended_from is Status.FROZEN
    assert stopped.after.billing_state is BillingState.OK
    assert stopped.writes_off == f"renewal:{unpaid.id}:{format_instant(unpaid.current_period_end)}"


def test_cancel_with_only_past_due_integrations_is_disabled_at_once():
    unpaid = past_due(Status.ACTIVE, retry_at=NOW + timedelta(days=1))
    decision = run(account(), AccountAction.CANCEL, [unpaid], reason=CancelReason.OTHER)
    assert decision.after.status is AccountStatus.DISABLED
    assert [d.after.status for d in decision.integrations] == [Status.SUSPENDED]


@pytest.mark.parametrize("status", [AccountStatus.CANCEL_PENDING, AccountStatus.DISABLED])
def test_cancelling_again_is_a_no_op_success(status):
    decision = run(account(status=status), AccountAction.CANCEL, reason=CancelReason.OTHER)
    assert decision.noop and decision.after == decision.before


def test_cancel_needs_a_reason():
    with pytest.raises(ValidationFailed):
        run(account(), AccountAction.CANCEL)


def test_reactivate_a_cancel_pending_account_is_free():
    decision = run(
        account(status=AccountStatus.CANCEL_PENDING), AccountAction.REACTIVATE, [integration()]
    )
    assert decision.after.status is AccountStatus.ACTIVE
    assert decision.charge is None
    assert decision.integrations == ()


def test_reactivate_a_disabled_account_charges_every_suspended_integration_up_front():
    suspended = [
        integration(Status.SUSPENDED, integration_id="int_a", suspended_from=Status.ACTIVE),
        integration(
            Status.SUSPENDED, integration_id="int_b", plan="premium", suspended_from=Status.FROZEN
        ),
        integration(
            Status.SUSPENDED, integration_id="int_c", suspension_reason=SuspensionReason.NON_PAYMENT
        ),
    ]
    lines = account_reactivation_lines(suspended, NOW, CATALOG)
    assert [(line.integration_id, line.amount) for line in lines] == [
        ("int_a", 4900),
        ("int_b", 900),
    ]
    with pytest.raises(QuoteRequired):
        run(account(status=AccountStatus.DISABLED), AccountAction.REACTIVATE, suspended)
    decision = run(
        account(status=AccountStatus.DISABLED),
        AccountAction.REACTIVATE,
        suspended,
        quote=QuoteRef("quo_a", 5800),
    )
    assert decision.after.status is AccountStatus.ACTIVE
    assert decision.charge.amount == 5800
    assert decision.charge.idempotency_key == "quote:quo_a"
    back = {d.after.id: d.after for d in decision.integrations}
    assert set(back) == {"int_a", "int_b"}  # non-payment suspensions are not the account's
    assert back["int_a"].status is Status.ACTIVE
    assert back["int_b"].status is Status.FROZEN
    assert back["int_a"].current_period_start == NOW
    assert back["int_a"].current_period_end == utc(2027, 4, 2, 12)
    assert all(d.charge is None for d in decision.integrations)


def test_reactivate_an_active_account_is_invalid():
    with pytest.raises(InvalidTransition):
        run(account(), AccountAction.REACTIVATE)


def test_account_table_rows():
    assert set(ACCOUNT_TRANSITIONS) == {
        (AccountStatus.ACTIVE, AccountAction.CANCEL),
        (AccountStatus.CANCEL_PENDING, AccountAction.CANCEL),
        (AccountStatus.DISABLED, AccountAction.CANCEL),
        (AccountStatus.CANCEL_PENDING, AccountAction.REACTIVATE),
        (AccountStatus.DISABLED, AccountAction.REACTIVATE),
    }


def test_cancelling_account_is_disabled_when_the_last_billable_integration_stops():
    cancelling = account(status=AccountStatus.CANCEL_PENDING)
    still = settle(cancelling, 1, NOW, BOB)
    assert still.after.status is AccountStatus.CANCEL_PENDING
    assert still.after.version == cancelling.version + 1  # serialises concurrent settlements
    done = settle(cancelling, 0, NOW, BOB)
    assert done.after.status is AccountStatus.DISABLED
    assert [e.detail_type for e in done.events] == [DetailType.ACCOUNT_DISABLED]
    assert settle(account(), 0, NOW, BOB).noop


def test_creating_on_a_disabled_account_reopens_it():
    decision = reopen_for_create(account(status=AccountStatus.DISABLED), NOW, BOB)
    assert decision.after.status is AccountStatus.ACTIVE
    assert reopen_for_create(account(), NOW, BOB).noop


def test_quote_expires_after_fifteen_minutes():
    quote = build_quote("quo_1", "acc_1", "integration", (), {"int_1": 3}, NOW, CATALOG)
    assert quote.expires_at == NOW + timedelta(minutes=15)
    check_quote(quote, NOW + timedelta(minutes=14, seconds=59), {"int_1": 3})
    with pytest.raises(QuoteExpired):
        check_quote(quote, NOW + timedelta(minutes=15), {"int_1": 3})


def test_quote_is_stale_once_what_it_priced_changed():
    quote = build_quote("quo_1", "acc_1", "integration", (), {"int_1": 3}, NOW, CATALOG)
    with pytest.raises(QuoteStale):
        check_quote(quote, NOW, {"int_1": 4})


def test_an_unfreeze_line_is_the_prorated_difference_to_the_period_end():
    subject = integration(Status.FROZEN)
    quoted = reactivation_line(subject, MID, CATALOG)
    assert quoted == QuoteLine(
        integration_id=subject.id,
        description=(
            "Unfreeze Acme Supply to Shopify: 49.00 USD monthly less 9.00 USD frozen fee,"
            " prorated to 2026-12-21T10:00:00Z"
        ),
        amount=2000,
        period_start=MID,
        period_end=END,
    )
    assert reactivation_line(subject, END, CATALOG) is None  # nothing left: free
    assert reactivation_line(integration(Status.ACTIVE), MID, CATALOG) is None


def test_a_quote_is_valid_for_fifteen_minutes_for_the_versions_it_priced():
    lines = (QuoteLine("int_1", "x", 2000, MID, END),)
    quote = build_quote("quo_1", "acc_1", "integration", lines, {"int_1": 3}, MID, CATALOG)
    assert quote == Quote(
        id="quo_1",
        account_id="acc_1",
        scope="integration",
        lines=lines,
        currency="usd",
        created_at=MID,
        expires_at=MID + timedelta(minutes=15),
        versions={"int_1": 3},
    )
    assert quote.amount == 2000 and timedelta(minutes=15) == QUOTE_TTL
    check_quote(quote, MID + QUOTE_TTL - timedelta(seconds=1), {"int_1": 3})
    with pytest.raises(QuoteExpired) as expired:
        check_quote(quote, MID + QUOTE_TTL, {"int_1": 3})
    assert expired.value.extra == {"expires_at": "2026-12-06T10:15:00Z"}
    with pytest.raises(QuoteStale):
        check_quote(quote, MID, {"int_1": 4})


def test_only_account_cancelled_suspensions_come_back_with_the_account():
    lines = account_reactivation_lines(
        [
            integration(Status.SUSPENDED, integration_id="int_a"),
            integration(
                Status.SUSPENDED,
                integration_id="int_b",
                suspension_reason=SuspensionReason.NON_PAYMENT,
            ),
            integration(Status.ACTIVE, integration_id="int_c"),
        ],
        MID,
        CATALOG,
    )
    assert [(x.integration_id, x.amount) for x in lines] == [("int_a", 4900)]


def test_actors_read_as_who_did_it():
    assert str(ALICE) == "user:alice"
    assert str(SYSTEM) == "system" and str(STRIPE) == "stripe"
    assert str(Actor("user", "")) == "user"
    assert user("bob") == Actor("user", "bob")


def test_accounts_default_to_free_and_active():
    fresh = Account(id="acc_9", status=AccountStatus.ACTIVE, created_at=MID)
    assert (fresh.currency, fresh.has_payment_method, fresh.stripe_customer_id, fresh.version) == (
        "usd",
        False,
        None,
        0,
    )
