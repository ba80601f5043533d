"""The "Integration statuses" and "Actions on one integration" tables of lifecycle.md."""

from datetime import timedelta

import pytest

from lifecycle.rules.calendar import add_month, utc
from lifecycle.rules.errors import (
    AccountNotActive,
    InvalidTransition,
    QuoteRequired,
    ValidationFailed,
)
from lifecycle.rules.integration import TRANSITIONS, Action, Outcome, QuoteRef
from lifecycle.rules.model import (
    AccountStatus,
    BillingState,
    CancelReason,
    ChargeKind,
    DetailType,
    Status,
    SuspensionReason,
    renewal_fee,
)
from lifecycle.rules.quotes import reactivation_line
from lifecycle.rules.renewal import decide_renewal
from tests.factories import ANCHOR, CATALOG, MID, account, act, create_new, integration, past_due


@pytest.mark.parametrize(
    ("status", "syncing", "billed"),
    [
        (Status.ACTIVE, True, 4900),
        (Status.FREEZE_PENDING, True, 900),
        (Status.FROZEN, False, 900),
        (Status.CANCEL_PENDING, True, None),
        (Status.SUSPENDED, False, None),
    ],
)
def test_status_table_syncing_and_renewal_fee(status, syncing, billed):
    subject = integration(status)
    assert subject.sync_enabled is syncing
    assert renewal_fee(status, 4900, 900) == billed


def test_cancel_pending_of_a_frozen_integration_does_not_sync():
    assert integration(Status.CANCEL_PENDING, cancelled_from=Status.FROZEN).sync_enabled is False


def test_create_is_active_from_now_and_charges_the_first_month_up_front():
    now = utc(2026, 11, 21, 10)
    decision = create_new(account(), "premium", now)
    assert decision.after.status is Status.ACTIVE
    assert (decision.after.current_period_start, decision.after.current_period_end) == (
        now,
        utc(2026, 12, 21, 10),
    )
    assert decision.charge.amount == 9900
    assert decision.charge.kind is ChargeKind.CREATE
    assert decision.charge.idempotency_key == "create:int_9"
    assert [e.detail_type for e in decision.events] == [DetailType.INTEGRATION_CREATED]


def test_create_on_a_disabled_account_is_allowed():
    decision = create_new(account(status=AccountStatus.DISABLED))
    assert decision.charge.amount == 2900


def test_create_on_a_cancel_pending_account_is_refused():
    with pytest.raises(AccountNotActive):
        create_new(account(status=AccountStatus.CANCEL_PENDING))


def test_freeze_active_becomes_freeze_pending_and_keeps_syncing_without_charge():
    decision = act(integration(Status.ACTIVE), Action.FREEZE)
    assert decision.after.status is Status.FREEZE_PENDING
    assert decision.after.sync_enabled is True
    assert decision.charge is None
    assert decision.after.version == 4
    assert [e.detail_type for e in decision.events] == [DetailType.FREEZE_SCHEDULED]
    assert decision.events[0].data["effective_at"] == "2026-12-21T10:00:00Z"
    assert decision.history[0].type == "freeze_scheduled"


@pytest.mark.parametrize("status", [Status.ACTIVE, Status.FREEZE_PENDING, Status.FROZEN])
def test_cancel_becomes_cancel_pending_and_remembers_where_it_came_from(status):
    decision = act(
        integration(status), Action.CANCEL, reason=CancelReason.MISSING_FEATURES, comment=" slow "
    )
    assert decision.after.status is Status.CANCEL_PENDING
    assert decision.after.cancelled_from is status
    assert decision.after.cancellation.reason is CancelReason.MISSING_FEATURES
    assert decision.after.cancellation.comment == "slow"
    assert decision.charge is None  # no refund of the current period, ever, and no charge
    assert [e.detail_type for e in decision.events] == [DetailType.CANCEL_SCHEDULED]


def test_cancel_without_a_reason_is_refused():
    with pytest.raises(ValidationFailed, match="reason"):
        act(integration(Status.ACTIVE), Action.CANCEL)


def test_cancel_comment_over_a_thousand_characters_is_refused():
    with pytest.raises(ValidationFailed, match="1000"):
        act(
            integration(Status.ACTIVE), Action.CANCEL, reason=CancelReason.OTHER, comment="x" * 1001
        )


def test_cancel_suspended_deletes_at_once_with_a_tombstone():
    decision = act(
        integration(Status.SUSPENDED), Action.CANCEL, reason=CancelReason.NO_LONGER_NEEDED
    )
    assert decision.deleted
    assert decision.tombstone.integration_id == "int_1"
    assert decision.tombstone.reason == "no_longer_needed"
    assert decision.events[0].detail_type is DetailType.INTEGRATION_DELETED
    assert decision.events[0].sync_enabled is False


@pytest.mark.parametrize("came_from", [Status.ACTIVE, Status.FREEZE_PENDING, Status.FROZEN])
def test_reactivate_cancel_pending_returns_to_its_status_for_free(came_from):
    decision = act(integration(Status.CANCEL_PENDING, cancelled_from=came_from), Action.REACTIVATE)
    assert decision.after.status is came_from
    assert decision.after.cancellation is None
    assert decision.charge is None
    assert [e.detail_type for e in decision.events] == [DetailType.CANCEL_REVOKED]


def test_reactivate_freeze_pending_is_active_for_free():
    decision = act(integration(Status.FREEZE_PENDING), Action.REACTIVATE)
    assert decision.after.status is Status.ACTIVE
    assert decision.charge is None


def test_unfreeze_charges_the_prorated_difference_against_a_quote():
    frozen = integration(Status.FROZEN)
    line = reactivation_line(frozen, MID, CATALOG)
    # (4900 - 900) for 15 of 30 days.
    assert line.amount == 2000
    decision = act(frozen, Action.REACTIVATE, quote=QuoteRef("quo_1", line.amount))
    assert decision.after.status is Status.ACTIVE
    assert decision.after.current_period_end == frozen.current_period_end  # same period
    assert decision.charge.amount == 2000
    assert decision.charge.idempotency_key == "quote:quo_1"


def test_unfreeze_without_a_quote_is_quote_required():
    with pytest.raises(QuoteRequired):
        act(integration(Status.FROZEN), Action.REACTIVATE)


def test_unfreeze_floors_at_zero_when_the_frozen_fee_exceeds_the_plan():
    cheap = type(CATALOG)(monthly_fees={"tiny": 500}, frozen_fee=900)
    frozen = integration(Status.FROZEN, plan="tiny")
    decision = act(frozen, Action.REACTIVATE, catalog=cheap)
    assert decision.after.status is Status.ACTIVE
    assert decision.charge is None


@pytest.mark.parametrize(("resumes_as", "fee"), [(Status.ACTIVE, 4900), (Status.FROZEN, 900)])
def test_reactivate_suspended_starts_a_new_period_now_for_the_full_fee(resumes_as, fee):
    suspended = integration(
        Status.SUSPENDED, suspended_from=resumes_as, suspension_reason=SuspensionReason.NON_PAYMENT
    )
    now = utc(2027, 2, 3, 9, 30)
    decision = act(suspended, Action.REACTIVATE, at=now, quote=QuoteRef("quo_2", fee))
    after = decision.after
    assert after.status is resumes_as
    assert (after.anchor, after.current_period_start, after.current_period_end) == (
        now,
        now,
        utc(2027, 3, 3, 9, 30),
    )
    assert after.suspension_reason is None
    assert decision.charge.amount == fee


def test_update_settings_is_allowed_in_every_status_without_charge():
    for status in Status:
        decision = act(integration(status), Action.UPDATE_SETTINGS)
        assert decision.after.status is status
        assert decision.charge is None
        assert decision.after.version == 4


ALREADY_HOLDS = [pair for pair, outcome in TRANSITIONS.items() if outcome is Outcome.ALREADY_HOLDS]
# "A pair not listed is invalid_transition" (the table is pinned row by row below).
UNLISTED = [
    (status, action)
    for status in Status
    for action in Action
    if (status, action) not in TRANSITIONS
]


@pytest.mark.parametrize(("status", "action"), ALREADY_HOLDS)
def test_repeating_an_action_that_already_holds_is_a_no_op_success(status, action):
    subject = integration(status)
    decision = act(subject, action, reason=CancelReason.OTHER)
    assert decision.noop
    assert decision.after == subject
    assert decision.events == ()


@pytest.mark.parametrize(("status", "action"), UNLISTED)
def test_any_other_action_is_invalid_transition(status, action):
    with pytest.raises(InvalidTransition) as refused:
        act(integration(status), action)
    assert refused.value.extra["current_status"] == status.value


def test_the_table_lists_exactly_the_rulebook_rows():
    # The rulebook's "possible from" column, action by action; settings in every status.
    possible_from = {
        Action.FREEZE: {Status.ACTIVE, Status.FREEZE_PENDING, Status.FROZEN},
        Action.CANCEL: set(Status),
        Action.REACTIVATE: set(Status) - {Status.ACTIVE},
        Action.UPDATE_SETTINGS: set(Status),
    }
    assert set(TRANSITIONS) == {(s, a) for a, statuses in possible_from.items() for s in statuses}
    # What holds already is a no-op success, not a second schedule.
    assert set(ALREADY_HOLDS) == {
        (Status.FREEZE_PENDING, Action.FREEZE),
        (Status.FROZEN, Action.FREEZE),
        (Status.CANCEL_PENDING, Action.CANCEL),
    }


@pytest.mark.parametrize(
    ("status", "account_status", "price"),
    [
        (Status.FROZEN, AccountStatus.CANCEL_PENDING, 2000),
        (Status.SUSPENDED, AccountStatus.DISABLED, 4900),
    ],
)
def test_paid_reactivation_needs_an_active_account(status, account_status, price):
    with pytest.raises(AccountNotActive):
        act(
            integration(status),
            Action.REACTIVATE,
            account_status=account_status,
            quote=QuoteRef("q", price),
        )


def test_free_uncancel_is_allowed_while_the_account_is_cancelling():
    decision = act(
        integration(Status.CANCEL_PENDING),
        Action.REACTIVATE,
        account_status=AccountStatus.CANCEL_PENDING,
    )
    assert decision.after.status is Status.ACTIVE


@pytest.mark.parametrize("status", [Status.ACTIVE, Status.FREEZE_PENDING, Status.FROZEN])
def test_cancelling_a_past_due_integration_deletes_it_at_once_and_writes_off_the_charge(status):
    subject = past_due(status)
    decision = act(subject, Action.CANCEL, reason=CancelReason.TOO_EXPENSIVE)
    assert decision.after is None
    assert decision.tombstone is not None and decision.tombstone.reason == "too_expensive"
    assert decision.writes_off == f"renewal:{subject.id}:2026-12-21T10:00:00Z"
    assert [e.detail_type.value for e in decision.events] == ["IntegrationDeleted"]


def test_cancelling_a_past_due_integration_still_needs_a_reason():
    with pytest.raises(ValidationFailed):
        act(past_due(), Action.CANCEL)


@pytest.mark.parametrize("status", [Status.ACTIVE, Status.FREEZE_PENDING, Status.FROZEN])
def test_reactivating_a_past_due_integration_is_refused(status):
    with pytest.raises(InvalidTransition) as refused:
        act(past_due(status), Action.REACTIVATE)
    assert refused.value.extra["billing_state"] == "past_due"


def test_freezing_a_past_due_integration_reprices_its_retries_at_the_frozen_fee():
    decision = act(past_due(), Action.FREEZE)
    assert decision.after.status is Status.FREEZE_PENDING
    assert decision.after.billing_state is BillingState.PAST_DUE
    retry = decide_renewal(
        decision.after,
        add_month(ANCHOR, 1) + timedelta(days=1),
        account_status=AccountStatus.ACTIVE,
        catalog=CATALOG,
    )
    assert retry.charge.amount == 900
    assert retry.paid.after.status is Status.FROZEN  # a paid retry: frozen for the new period
