"""Every field a decision writes, emits and records, pinned with real dates and cents: what is
stored, what the sync engine is told (events with their data) and what the history says.

The transition tables are tested row by row elsewhere; these pin the full records, so that a
wrong field (a period, a version, an event's data, a history detail) cannot slip through."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from lifecycle.rules.account import (
    AccountAction,
    reopen_for_create,
    settle,
)
from lifecycle.rules.calendar import add_month, utc
from lifecycle.rules.catalog import Catalog
from lifecycle.rules.errors import (
    AccountNotActive,
    InvalidTransition,
    QuoteRequired,
    ValidationFailed,
)
from lifecycle.rules.integration import (
    Action,
    QuoteRef,
    deletion_decision,
)
from lifecycle.rules.model import (
    SYSTEM,
    AccountDecision,
    AccountStatus,
    BillingState,
    Cancellation,
    CancelReason,
    ChargeKind,
    ChargeRequest,
    Decision,
    DetailType,
    DomainEvent,
    HistoryEntry,
    Integration,
    Status,
    SuspensionReason,
    Tombstone,
)
from lifecycle.rules.quotes import reactivation_line
from lifecycle.rules.renewal import decide_renewal, renewed, suspension
from tests.factories import (
    ALICE,
    ANCHOR,
    CATALOG,
    END,
    MID,
    account,
    act,
    act_on_account,
    create_new,
    integration,
    past_due,
)

NEXT_END = utc(2027, 1, 21, 10)


def event(subject, detail_type, at=MID, **data):
    """What the sync engine is told about `subject`: of an account, its id; of an integration,
    its account's id, its own, and whether it syncs."""
    if isinstance(subject, Integration):
        told = DomainEvent(detail_type, account_id=subject.account_id, at=at, data=data)
        return replace(told, integration_id=subject.id, sync_enabled=subject.sync_enabled)
    return DomainEvent(detail_type, account_id=subject.id, at=at, data=data)


def line(kind, actor=ALICE, at=MID, **details):
    return HistoryEntry(at=at, type=kind, actor=str(actor), details=details)


def charge(subject, kind, amount, description, key, start, end, **rest):
    """The charge in USD of `subject` alone for [start, end), keyed `key` at Stripe."""
    return ChargeRequest(
        kind=kind,
        amount=amount,
        currency="usd",
        description=description,
        integration_ids=(subject.id,),
        idempotency_key=key,
        period_start=start,
        period_end=end,
        **rest,
    )


def expected(subject, told, wrote, at=MID, actor=ALICE, **changes):
    """The decision storing `subject` (an integration or an account) with `changes` at its next
    version, telling the sync engine `told` (detail type: data) and writing `wrote` (history or
    activity kind: details) in that order, at `at` by `actor`."""
    after = replace(subject, version=subject.version + 1, **changes)
    events = tuple(event(after, kind, at, **data) for kind, data in told.items())
    history = tuple(line(kind, actor, at, **details) for kind, details in wrote.items())
    if isinstance(subject, Integration):
        return Decision(before=subject, after=after, events=events, history=history)
    return AccountDecision(before=subject, after=after, events=events, activity=history)


# ---- one integration -------------------------------------------------------------------------


def test_create_records_a_new_active_integration_charged_its_first_month():
    decision = create_new(account(), "premium")
    after = Integration(
        id="int_9",
        account_id="acc_1",
        name="Acme to Shopify",
        supplier="acme",
        channel="shopify",
        plan="premium",
        status=Status.ACTIVE,
        current_period_start=MID,
        current_period_end=utc(2027, 1, 6, 10),
        anchor=MID,
        created_at=MID,
        currency="usd",
        version=1,
    )
    assert decision == Decision(
        before=None,
        after=after,
        charge=charge(
            after,
            ChargeKind.CREATE,
            9900,
            "Acme to Shopify (premium): first month, up front",
            "create:int_9",
            MID,
            utc(2027, 1, 6, 10),
        ),
        events=(event(after, DetailType.INTEGRATION_CREATED, plan="premium", amount=9900),),
        history=(line("integration_created", plan="premium", amount=9900),),
    )


def test_a_free_plan_creates_without_a_charge():
    decision = create_new(account(), "free", catalog=Catalog(monthly_fees={"free": 0}))
    assert decision.charge is None and decision.after is not None


def test_create_in_a_cancelling_account_is_refused_with_its_status():
    with pytest.raises(AccountNotActive) as refused:
        create_new(account(status=AccountStatus.CANCEL_PENDING))
    assert refused.value.extra == {"account_status": "cancel_pending"}


def test_freeze_records_the_scheduled_freeze():
    subject = integration(Status.ACTIVE)
    scheduled = {"effective_at": "2026-12-21T10:00:00Z"}
    assert act(subject, Action.FREEZE) == expected(
        subject,
        {DetailType.FREEZE_SCHEDULED: scheduled},
        {"freeze_scheduled": scheduled},
        status=Status.FREEZE_PENDING,
    )


@pytest.mark.parametrize("status", [Status.ACTIVE, Status.FREEZE_PENDING, Status.FROZEN])
def test_cancel_records_the_reason_the_comment_and_where_it_came_from(status):
    subject = integration(status)
    decision = act(
        subject, Action.CANCEL, reason=CancelReason.SWITCHED_PROVIDER, comment="  too slow  "
    )
    scheduled = {"effective_at": "2026-12-21T10:00:00Z", "reason": "switched_provider"}
    assert decision == expected(
        subject,
        {DetailType.CANCEL_SCHEDULED: scheduled},
        {"cancel_scheduled": {**scheduled, "comment": "too slow", "previous_status": status.value}},
        status=Status.CANCEL_PENDING,
        cancellation=Cancellation(CancelReason.SWITCHED_PROVIDER, "too slow", MID),
        cancelled_from=status,
    )
    assert decision.after.sync_enabled is (status is not Status.FROZEN)


def test_a_blank_comment_is_no_comment_and_a_long_one_is_refused():
    decision = act(integration(), Action.CANCEL, reason=CancelReason.OTHER, comment="   ")
    assert decision.after.cancellation.comment is None
    assert act(integration(), Action.CANCEL, reason=CancelReason.OTHER, comment="x" * 1000)
    with pytest.raises(ValidationFailed) as refused:
        act(integration(), Action.CANCEL, reason=CancelReason.OTHER, comment="x" * 1001)
    assert refused.value.extra == {"field": "comment"}
    with pytest.raises(ValidationFailed) as missing:
        act(integration(), Action.CANCEL)
    assert missing.value.extra == {"field": "reason"}


@pytest.mark.parametrize("came_from", [Status.ACTIVE, Status.FREEZE_PENDING, Status.FROZEN])
def test_uncancel_records_the_status_it_returns_to(came_from):
    subject = integration(Status.CANCEL_PENDING, cancelled_from=came_from)
    returned = {"status": came_from.value}
    assert act(subject, Action.REACTIVATE) == expected(
        subject,
        {DetailType.CANCEL_REVOKED: returned},
        {"cancel_revoked": returned},
        status=came_from,
        cancellation=None,
        cancelled_from=None,
    )


def test_taking_back_a_freeze_records_a_free_reactivation():
    subject = integration(Status.FREEZE_PENDING)
    assert act(subject, Action.REACTIVATE) == expected(
        subject,
        {DetailType.INTEGRATION_REACTIVATED: {"amount": 0}},
        {"integration_reactivated": {"from": "freeze_pending", "amount": 0}},
        status=Status.ACTIVE,
    )


def test_a_paid_unfreeze_records_its_charge_against_the_quote():
    subject = integration(Status.FROZEN)
    decision = act(subject, Action.REACTIVATE, quote=QuoteRef("quo_7", 2000))
    description = reactivation_line(subject, MID, CATALOG).description
    reactivated = expected(
        subject,
        {DetailType.INTEGRATION_REACTIVATED: {"amount": 2000}},
        {"integration_reactivated": {"from": "frozen", "amount": 2000}},
        status=Status.ACTIVE,
    )
    assert decision == replace(
        reactivated,
        charge=charge(subject, ChargeKind.QUOTE, 2000, description, "quote:quo_7", MID, END),
    )


def test_a_paid_reinstatement_records_a_new_period_from_now():
    subject = integration(
        Status.SUSPENDED,
        suspension_reason=SuspensionReason.NON_PAYMENT,
        suspended_from=Status.FROZEN,
        suspended_at=END,
        billing_state=BillingState.OK,
    )
    at = END + timedelta(days=3)
    decision = act(subject, Action.REACTIVATE, at=at, quote=QuoteRef("quo_8", 900))
    after = replace(
        subject,
        status=Status.FROZEN,
        anchor=at,
        period_index=0,
        current_period_start=at,
        current_period_end=add_month(at, 1),
        suspension_reason=None,
        suspended_from=None,
        suspended_at=None,
        version=4,
    )
    assert decision.after == after
    description = "Reactivate Acme Supply to Shopify (frozen): one month up front"
    assert decision.charge == charge(
        subject, ChargeKind.QUOTE, 900, description, "quote:quo_8", at, add_month(at, 1)
    )
    assert decision.events == (event(after, DetailType.INTEGRATION_REACTIVATED, at=at, amount=900),)


def test_a_paid_reactivation_without_its_quote_says_the_price():
    with pytest.raises(QuoteRequired) as refused:
        act(integration(Status.FROZEN), Action.REACTIVATE)
    assert refused.value.extra == {"amount": 2000}


@pytest.mark.parametrize(
    ("account_status", "outcome_action"),
    [
        (AccountStatus.DISABLED, Action.REACTIVATE),
        (AccountStatus.CANCEL_PENDING, Action.REACTIVATE),
    ],
)
def test_paid_reactivations_need_an_active_account(account_status, outcome_action):
    with pytest.raises(AccountNotActive) as refused:
        act(
            integration(Status.FROZEN),
            outcome_action,
            account_status=account_status,
            quote=QuoteRef("q", 1),
        )
    assert refused.value.extra == {"account_status": account_status.value}


def test_uncancel_is_free_in_a_cancelling_account_but_not_in_a_disabled_one():
    subject = integration(Status.CANCEL_PENDING)
    assert act(subject, Action.REACTIVATE, account_status=AccountStatus.CANCEL_PENDING).after
    with pytest.raises(AccountNotActive):
        act(subject, Action.REACTIVATE, account_status=AccountStatus.DISABLED)


def test_an_action_not_in_the_table_says_where_it_is_possible_from():
    with pytest.raises(InvalidTransition) as refused:
        act(integration(Status.SUSPENDED), Action.FREEZE)
    assert refused.value.detail == (
        "Cannot freeze an integration that is suspended; this is possible from: active,"
        " freeze_pending, frozen."
    )
    assert refused.value.extra == {"current_status": "suspended"}


def test_deleting_keeps_one_tombstone_and_tells_the_sync_engine_to_stop():
    cancellation = Cancellation(CancelReason.NO_LONGER_NEEDED, None, MID)
    subject = integration(Status.CANCEL_PENDING, cancellation=cancellation)
    decision = deletion_decision(subject, END, SYSTEM, cancellation)
    assert decision == Decision(
        before=subject,
        after=None,
        events=(
            DomainEvent(
                detail_type=DetailType.INTEGRATION_DELETED,
                account_id="acc_1",
                integration_id=subject.id,
                sync_enabled=False,
                at=END,
                data={"reason": "no_longer_needed", "name": "Acme Supply to Shopify"},
            ),
        ),
        history=(
            line(
                "integration_deleted",
                SYSTEM,
                END,
                name="Acme Supply to Shopify",
                reason="no_longer_needed",
            ),
        ),
        tombstone=Tombstone(subject.id, "Acme Supply to Shopify", MID, END, "no_longer_needed"),
    )


def test_settings_replaced_bump_the_version_and_say_so():
    subject = integration(Status.FROZEN)
    assert act(subject, Action.UPDATE_SETTINGS) == expected(subject, {}, {"settings_updated": {}})


# ---- renewal ---------------------------------------------------------------------------------


def test_a_renewed_pending_freeze_takes_effect_with_both_events():
    subject = integration(Status.FREEZE_PENDING)
    decision, fee = renewed(subject, END, CATALOG)
    renewal = {
        "amount": 900,
        "period_start": "2026-12-21T10:00:00Z",
        "period_end": "2027-01-21T10:00:00Z",
    }
    assert fee == 900
    assert decision == expected(
        subject,
        {DetailType.INTEGRATION_FROZEN: {}, DetailType.INTEGRATION_RENEWED: renewal},
        {"integration_frozen": {}, "integration_renewed": renewal},
        END,
        SYSTEM,
        status=Status.FROZEN,
        period_index=1,
        current_period_start=END,
        current_period_end=NEXT_END,
    )


def test_a_renewal_charge_is_keyed_by_its_period_and_attempt():
    subject = past_due(Status.ACTIVE)
    renewal = decide_renewal(
        subject, END + timedelta(days=1), account_status=AccountStatus.ACTIVE, catalog=CATALOG
    )
    ledger_key = f"renewal:{subject.id}:2026-12-21T10:00:00Z"
    description = "Acme Supply to Shopify: active fee 49.00 USD for 2026-12-21 to 2027-01-21"
    assert renewal.charge == charge(
        subject,
        ChargeKind.RENEWAL,
        4900,
        description,
        f"{ledger_key}:attempt-2",
        END,
        NEXT_END,
        attempt=2,
        ledger_key=ledger_key,
    )


def test_a_declined_renewal_is_past_due_until_the_next_retry():
    subject = integration(Status.ACTIVE)
    renewal = decide_renewal(subject, END, account_status=AccountStatus.ACTIVE, catalog=CATALOG)
    details = {"amount": 4900, "attempt": 1, "next_attempt_at": "2026-12-22T10:00:00Z"}
    # the email's facts ride on the event only: the history line keeps the ledger's details
    told = {
        "currency": "usd",
        "name": "Acme Supply to Shopify",
        "suspends_at": "2026-12-28T10:00:00Z",
    }
    assert renewal.declined == expected(
        subject,
        {DetailType.PAYMENT_FAILED: {**details, **told}},
        {"payment_failed": details},
        END,
        SYSTEM,
        billing_state=BillingState.PAST_DUE,
        dunning_attempts=1,
        next_attempt_at=END + timedelta(days=1),
    )


def test_the_last_declined_retry_suspends_and_writes_the_charge_off():
    subject = past_due(Status.FREEZE_PENDING, attempts=3, retry_at=END + timedelta(days=7))
    at = END + timedelta(days=7)
    renewal = decide_renewal(subject, at, account_status=AccountStatus.ACTIVE, catalog=CATALOG)
    declined = renewal.declined
    assert declined.writes_off == f"renewal:{subject.id}:2026-12-21T10:00:00Z"
    assert declined.after == replace(
        subject,
        status=Status.SUSPENDED,
        suspension_reason=SuspensionReason.NON_PAYMENT,
        suspended_from=Status.FROZEN,
        suspended_at=at,
        billing_state=BillingState.OK,
        dunning_attempts=0,
        next_attempt_at=None,
        version=4,
    )
    assert [e.detail_type for e in declined.events] == [
        DetailType.PAYMENT_FAILED,
        DetailType.INTEGRATION_SUSPENDED,
    ]
    assert declined.events[0].data == {
        "amount": 900,
        "attempt": 4,
        "currency": "usd",
        "name": "Acme Supply to Shopify",
        "suspended": True,
    }
    assert declined.events[1].data == {"reason": "non_payment", "name": "Acme Supply to Shopify"}
    assert declined.history[0].details == {"amount": 900, "attempt": 4, "written_off": True}
    assert declined.history[1].details == {"reason": "non_payment", "resumes_as": "frozen"}


def test_suspension_at_an_account_cancellation_records_the_reason():
    subject = integration(Status.ACTIVE)
    decision = suspension(subject, END, SuspensionReason.ACCOUNT_CANCELLED)
    assert decision == expected(
        subject,
        {
            DetailType.INTEGRATION_SUSPENDED: {
                "reason": "account_cancelled",
                "name": "Acme Supply to Shopify",
            }
        },
        {"integration_suspended": {"reason": "account_cancelled", "resumes_as": "active"}},
        END,
        SYSTEM,
        status=Status.SUSPENDED,
        suspension_reason=SuspensionReason.ACCOUNT_CANCELLED,
        suspended_from=Status.ACTIVE,
        suspended_at=END,
    )
    assert decision.writes_off is None


# ---- account ---------------------------------------------------------------------------------


run = act_on_account


# What a reactivation stores on the account (at MID).
REOPENED = {"status": AccountStatus.ACTIVE, "cancellation": None, "status_changed_at": MID}


def test_an_account_cancel_records_its_reason_and_comment():
    subject = account()
    decision = run(
        subject,
        AccountAction.CANCEL,
        [integration(Status.ACTIVE)],
        reason=CancelReason.TOO_EXPENSIVE,
        comment=" later ",
    )
    assert decision == expected(
        subject,
        {DetailType.ACCOUNT_CANCEL_SCHEDULED: {"reason": "too_expensive"}},
        {"account_cancel_scheduled": {"reason": "too_expensive", "comment": "later"}},
        status=AccountStatus.CANCEL_PENDING,
        cancellation=Cancellation(CancelReason.TOO_EXPENSIVE, "later", MID),
        status_changed_at=MID,
    )


def test_an_account_cancel_with_nothing_billable_is_disabled_at_once_and_says_so():
    subject = account()
    decision = run(subject, AccountAction.CANCEL, [], reason=CancelReason.OTHER)
    assert decision.after.status is AccountStatus.DISABLED
    assert decision.events[1] == event(decision.after, DetailType.ACCOUNT_DISABLED)
    assert decision.activity[1] == line("account_disabled")
    with pytest.raises(ValidationFailed):
        run(subject, AccountAction.CANCEL, [], reason=CancelReason.OTHER, comment="x" * 1001)


def test_taking_an_account_cancel_back_is_free():
    subject = account(
        status=AccountStatus.CANCEL_PENDING,
        cancellation=Cancellation(CancelReason.OTHER, None, ANCHOR),
    )
    free = {"amount": 0}
    assert run(subject, AccountAction.REACTIVATE) == expected(
        subject, {DetailType.ACCOUNT_REACTIVATED: free}, {"account_reactivated": free}, **REOPENED
    )


def test_a_paid_account_reactivation_records_one_charge_for_every_suspended_integration():
    subject = account(status=AccountStatus.DISABLED, status_changed_at=END)
    suspended = [
        integration(Status.SUSPENDED, integration_id="int_a", suspended_at=END),
        integration(
            Status.SUSPENDED, integration_id="int_b", suspended_at=END, suspended_from=Status.FROZEN
        ),
        integration(
            Status.SUSPENDED,
            integration_id="int_c",
            suspended_at=END,
            suspension_reason=SuspensionReason.NON_PAYMENT,
        ),
    ]
    at = END + timedelta(days=2)
    with pytest.raises(QuoteRequired) as refused:
        run(subject, AccountAction.REACTIVATE, suspended, at=at)
    assert refused.value.extra == {"amount": 5800}
    decision = run(subject, AccountAction.REACTIVATE, suspended, at=at, quote=QuoteRef("q", 5800))
    assert decision.charge == ChargeRequest(
        kind=ChargeKind.QUOTE,
        amount=5800,
        currency="usd",
        description="Account reactivation: 2 integration(s), the coming month up front",
        integration_ids=("int_a", "int_b"),
        idempotency_key="quote:q",
    )
    assert decision.before == subject
    assert decision.after == replace(
        subject, status=AccountStatus.ACTIVE, cancellation=None, status_changed_at=at, version=2
    )
    assert [d.after.id for d in decision.integrations] == ["int_a", "int_b"]
    assert [d.events[0].data["amount"] for d in decision.integrations] == [4900, 900]
    assert {d.history[0].actor for d in decision.integrations} == {"user:alice"}
    assert [d.after.anchor for d in decision.integrations] == [at, at]
    assert decision.events == (
        event(decision.after, DetailType.ACCOUNT_REACTIVATED, at=at, amount=5800),
    )
    assert decision.activity == (
        line("account_reactivated", at=at, amount=5800, integrations=["int_a", "int_b"]),
    )


def test_a_disabled_account_with_nothing_to_bring_back_is_reactivated_for_free():
    subject = account(
        status=AccountStatus.DISABLED,
        status_changed_at=END,
        cancellation=Cancellation(CancelReason.OTHER, None, ANCHOR),
    )
    only_non_payment = [
        integration(Status.SUSPENDED, suspension_reason=SuspensionReason.NON_PAYMENT)
    ]
    assert run(subject, AccountAction.REACTIVATE, only_non_payment) == expected(
        subject,
        {DetailType.ACCOUNT_REACTIVATED: {"amount": 0}},
        {"account_reactivated": {"amount": 0, "integrations": []}},
        **REOPENED,
    )


def test_reopening_a_disabled_account_by_a_create_is_recorded():
    subject = account(status=AccountStatus.DISABLED)
    assert reopen_for_create(subject, MID, ALICE) == expected(
        subject,
        {DetailType.ACCOUNT_REACTIVATED: {"amount": 0}},
        {"account_reactivated": {"via": "create"}},
        **REOPENED,
    )
    assert reopen_for_create(account(), MID, ALICE).noop


def test_settling_a_cancelling_account_bumps_it_or_disables_it_with_the_last_one():
    cancelling = account(status=AccountStatus.CANCEL_PENDING)
    bumped = settle(cancelling, 2, END, SYSTEM)
    assert bumped == AccountDecision(before=cancelling, after=replace(cancelling, version=2))
    disabled = settle(cancelling, 0, END, SYSTEM)
    assert disabled == expected(
        cancelling,
        {DetailType.ACCOUNT_DISABLED: {}},
        {"account_disabled": {}},
        END,
        SYSTEM,
        status=AccountStatus.DISABLED,
        status_changed_at=END,
    )
    assert settle(account(), 0, END, SYSTEM).noop
