"""The Renewal and Deletion sections of lifecycle.md: every row, dunning, with real dates."""

from dataclasses import replace
from datetime import timedelta

import pytest

from lifecycle.rules.calendar import utc
from lifecycle.rules.model import AccountStatus, BillingState, DetailType, Status, SuspensionReason
from lifecycle.rules.renewal import DueKind, decide_deletion, decide_renewal, due_entry
from tests.factories import CATALOG, integration

END = utc(2026, 12, 21, 10)  # the end of period 0 of an integration anchored 2026-11-21T10:00Z
NEXT_END = utc(2027, 1, 21, 10)


def renew(subject, at=END, account_status=AccountStatus.ACTIVE):
    return decide_renewal(subject, at, account_status=account_status, catalog=CATALOG)


def test_nothing_is_due_before_the_period_end():
    assert renew(integration(Status.ACTIVE), at=END - timedelta(seconds=1)) is None


def test_active_renews_active_charging_the_monthly_fee_for_the_next_anchored_period():
    renewal = renew(integration(Status.ACTIVE))
    assert renewal.charge.amount == 4900
    assert (renewal.charge.period_start, renewal.charge.period_end) == (END, NEXT_END)
    assert renewal.charge.idempotency_key == "renewal:int_1:2026-12-21T10:00:00Z"
    after = renewal.paid.after
    assert after.status is Status.ACTIVE
    assert (after.current_period_start, after.current_period_end) == (END, NEXT_END)
    assert [e.detail_type for e in renewal.paid.events] == [DetailType.INTEGRATION_RENEWED]


def test_freeze_pending_becomes_frozen_and_stops_syncing_charging_the_frozen_fee():
    renewal = renew(integration(Status.FREEZE_PENDING))
    assert renewal.charge.amount == 900
    assert renewal.paid.after.status is Status.FROZEN
    assert renewal.paid.after.sync_enabled is False
    assert [e.detail_type for e in renewal.paid.events] == [
        DetailType.INTEGRATION_FROZEN,
        DetailType.INTEGRATION_RENEWED,
    ]
    assert renewal.paid.events[0].sync_enabled is False


def test_frozen_stays_frozen_charging_the_frozen_fee():
    renewal = renew(integration(Status.FROZEN))
    assert renewal.charge.amount == 900
    assert renewal.paid.after.status is Status.FROZEN


def test_cancel_pending_is_never_renewed_and_is_deleted_at_the_period_end():
    subject = integration(Status.CANCEL_PENDING)
    assert renew(subject) is None
    assert renew(subject, at=END + timedelta(days=40)) is None
    assert decide_deletion(subject, END - timedelta(seconds=1)) is None
    deletion = decide_deletion(subject, END)
    assert deletion.deleted
    assert deletion.tombstone.name == "Acme Supply to Shopify"
    assert deletion.tombstone.cancelled_at is not None
    assert deletion.events[0].detail_type is DetailType.INTEGRATION_DELETED


def test_only_cancel_pending_integrations_are_deleted():
    for status in (Status.ACTIVE, Status.FREEZE_PENDING, Status.FROZEN, Status.SUSPENDED):
        assert decide_deletion(integration(status), END + timedelta(days=400)) is None


@pytest.mark.parametrize(
    ("status", "remembered"),
    [
        (Status.ACTIVE, Status.ACTIVE),
        (Status.FREEZE_PENDING, Status.FROZEN),
        (Status.FROZEN, Status.FROZEN),
    ],
)
def test_integrations_of_a_cancelled_account_are_suspended_at_their_period_end(status, remembered):
    renewal = renew(integration(status), account_status=AccountStatus.CANCEL_PENDING)
    assert renewal.charge is None
    after = renewal.paid.after
    assert after.status is Status.SUSPENDED
    assert after.suspension_reason is SuspensionReason.ACCOUNT_CANCELLED
    assert after.suspended_from is remembered
    assert after.sync_enabled is False
    assert [e.detail_type for e in renewal.paid.events] == [DetailType.INTEGRATION_SUSPENDED]


def test_late_sweep_keeps_the_anchor():
    renewal = renew(integration(Status.ACTIVE), at=END + timedelta(hours=30))
    assert (renewal.charge.period_start, renewal.charge.period_end) == (END, NEXT_END)


def test_anchor_on_the_31st_renews_across_february():
    subject = integration(Status.ACTIVE, anchor=utc(2027, 1, 31, 10))
    assert subject.current_period_end == utc(2027, 2, 28, 10)
    first = renew(subject, at=utc(2027, 2, 28, 10))
    assert (first.charge.period_start, first.charge.period_end) == (
        utc(2027, 2, 28, 10),
        utc(2027, 3, 31, 10),
    )
    second = renew(first.paid.after, at=utc(2027, 3, 31, 10))
    assert second.charge.period_end == utc(2027, 4, 30, 10)


def test_failed_renewal_is_past_due_still_syncing_and_retried_after_one_day():
    renewal = renew(integration(Status.ACTIVE))
    declined = renewal.declined.after
    assert declined.status is Status.ACTIVE
    assert declined.sync_enabled is True
    assert declined.billing_state is BillingState.PAST_DUE
    assert declined.next_attempt_at == END + timedelta(days=1)
    assert declined.current_period_end == END  # the period is renewed only once paid
    assert [e.detail_type for e in renewal.declined.events] == [DetailType.PAYMENT_FAILED]
    assert due_entry(declined).at == END + timedelta(days=1)


def test_dunning_retries_at_one_three_and_seven_days_then_suspends():
    subject = integration(Status.ACTIVE)
    attempts = []
    at = END
    while True:
        renewal = renew(subject, at=at)
        attempts.append((at, renewal.charge.idempotency_key))
        subject = renewal.declined.after
        if subject.status is Status.SUSPENDED:
            break
        at = subject.next_attempt_at
    assert [a for a, _ in attempts] == [
        END,
        END + timedelta(days=1),
        END + timedelta(days=3),
        END + timedelta(days=7),
    ]
    assert len({key for _, key in attempts}) == 4  # a fresh PaymentIntent per attempt
    assert subject.suspension_reason is SuspensionReason.NON_PAYMENT
    assert subject.billing_state is BillingState.OK  # the unpaid charge is written off
    assert subject.sync_enabled is False
    assert due_entry(subject) is None


def test_successful_retry_clears_past_due_and_renews_the_same_period():
    past_due = renew(integration(Status.ACTIVE)).declined.after
    retry = renew(past_due, at=END + timedelta(days=1))
    assert retry.charge.amount == 4900
    assert retry.charge.attempt == 2
    assert retry.paid.after.billing_state is BillingState.OK
    assert (retry.paid.after.current_period_start, retry.paid.after.current_period_end) == (
        END,
        NEXT_END,
    )


def test_retry_run_late_schedules_the_next_offset_after_now():
    past_due = renew(integration(Status.ACTIVE), at=END + timedelta(days=2)).declined.after
    assert past_due.next_attempt_at == END + timedelta(days=3)


def test_freeze_pending_declined_keeps_its_status_and_freezes_once_paid():
    subject = integration(Status.FREEZE_PENDING)
    past_due = renew(subject).declined.after
    assert past_due.status is Status.FREEZE_PENDING
    paid = renew(past_due, at=END + timedelta(days=1)).paid.after
    assert paid.status is Status.FROZEN


def test_freeze_pending_suspended_for_non_payment_is_remembered_frozen():
    subject = replace(renew(integration(Status.FREEZE_PENDING)).declined.after)
    renewal = renew(subject, at=END + timedelta(days=7))
    assert renewal.declined.after.suspended_from is Status.FROZEN


def test_due_entries_route_each_status_to_its_sweep():
    assert due_entry(integration(Status.ACTIVE)).kind is DueKind.RENEWAL
    assert due_entry(integration(Status.FROZEN)).at == END
    assert due_entry(integration(Status.CANCEL_PENDING)).kind is DueKind.DELETION
    assert due_entry(integration(Status.SUSPENDED)) is None
