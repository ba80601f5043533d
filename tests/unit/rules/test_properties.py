"""Hypothesis properties of the calendar, proration and the state machines."""

import calendar
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.rules.calendar import add_month, utc
from lifecycle.rules.errors import DomainError
from lifecycle.rules.integration import Action, Command, QuoteRef, decide
from lifecycle.rules.model import (
    AccountStatus,
    BillingState,
    CancelReason,
    Status,
    SuspensionReason,
    user,
)
from lifecycle.rules.money import prorate
from lifecycle.rules.quotes import reactivation_line
from lifecycle.rules.renewal import decide_deletion, decide_renewal
from tests.factories import CATALOG, integration


@st.composite
def valid_anchor(draw):
    year, month = draw(st.integers(2000, 2100)), draw(st.integers(1, 12))
    day = draw(st.integers(1, calendar.monthrange(year, month)[1]))
    return utc(
        year,
        month,
        day,
        draw(st.integers(0, 23)),
        draw(st.integers(0, 59)),
        draw(st.integers(0, 59)),
    )


@given(valid_anchor())
def test_add_month_never_drifts_over_36_renewals(anchor):
    subject = integration(Status.ACTIVE, anchor=anchor)
    for k in range(1, 37):
        end = subject.current_period_end
        month_index = anchor.month - 1 + k
        year, month = anchor.year + month_index // 12, month_index % 12 + 1
        expected_day = min(anchor.day, calendar.monthrange(year, month)[1])
        assert (end.year, end.month, end.day) == (year, month, expected_day)
        assert end.time() == anchor.time()
        assert end == add_month(anchor, k)
        renewal = decide_renewal(subject, end, account_status=AccountStatus.ACTIVE, catalog=CATALOG)
        subject = renewal.paid.after


@given(
    amount=st.integers(0, 10_000_000),
    start=valid_anchor(),
    length=st.integers(1, 100 * 86_400),
    offset=st.integers(-86_400, 101 * 86_400),
)
def test_prorate_is_exact_at_the_edges_never_negative_and_bounded(amount, start, length, offset):
    end = start + timedelta(seconds=length)
    assert prorate(amount, start, start, end) == amount
    assert prorate(amount, end, start, end) == 0
    value = prorate(amount, start + timedelta(seconds=offset), start, end)
    assert 0 <= value <= amount
    later = prorate(amount, start + timedelta(seconds=offset + 1), start, end)
    assert later <= value


REASONS = st.sampled_from(list(CancelReason))
# Moves onto (or just around) the next period end or retry: where an off-by-days rule shows.
BOUNDARY_OFFSETS = [-2 * 86_400, -86_400, -3_600, -1, 0, 1, 3_600, 2 * 86_400]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("act"), st.sampled_from(list(Action)), REASONS),
        st.tuples(st.just("wait"), st.integers(60, 40 * 86_400), st.none()),
        st.tuples(st.just("boundary"), st.sampled_from(BOUNDARY_OFFSETS), st.none()),
        st.tuples(st.just("renew"), st.booleans(), st.none()),
        st.tuples(st.just("delete"), st.none(), st.none()),
        st.tuples(st.just("account"), st.sampled_from(list(AccountStatus)), st.none()),
    ),
    max_size=40,
)

# Every status change the rulebook's tables allow (actions, renewal, deletion aside).
ALLOWED_CHANGES = {
    (Status.ACTIVE, Status.FREEZE_PENDING),
    (Status.ACTIVE, Status.CANCEL_PENDING),
    (Status.FREEZE_PENDING, Status.CANCEL_PENDING),
    (Status.FROZEN, Status.CANCEL_PENDING),
    (Status.CANCEL_PENDING, Status.ACTIVE),
    (Status.CANCEL_PENDING, Status.FREEZE_PENDING),
    (Status.CANCEL_PENDING, Status.FROZEN),
    (Status.FREEZE_PENDING, Status.ACTIVE),
    (Status.FROZEN, Status.ACTIVE),
    (Status.SUSPENDED, Status.ACTIVE),
    (Status.SUSPENDED, Status.FROZEN),
    (Status.FREEZE_PENDING, Status.FROZEN),  # renewal
    (Status.ACTIVE, Status.SUSPENDED),
    (Status.FREEZE_PENDING, Status.SUSPENDED),
    (Status.FROZEN, Status.SUSPENDED),
}


def check_invariants(subject):
    assert (subject.status is Status.CANCEL_PENDING) == (subject.cancelled_from is not None)
    assert (subject.status is Status.CANCEL_PENDING) == (subject.cancellation is not None)
    assert (subject.status is Status.SUSPENDED) == (subject.suspension_reason is not None)
    if subject.status is Status.SUSPENDED:
        assert subject.suspended_from in (Status.ACTIVE, Status.FROZEN)
        assert subject.billing_state is BillingState.OK
    if subject.billing_state is BillingState.PAST_DUE:
        assert subject.next_attempt_at is not None
        assert 1 <= subject.dunning_attempts <= 3
    assert subject.current_period_start == add_month(subject.anchor, subject.period_index)
    assert subject.current_period_end == add_month(subject.anchor, subject.period_index + 1)
    assert subject.cancelled_from in (None, Status.ACTIVE, Status.FREEZE_PENDING, Status.FROZEN)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(steps)
def test_no_sequence_of_actions_reaches_a_state_the_tables_forbid(sequence):
    subject = integration(Status.ACTIVE, version=1)
    now = subject.current_period_start
    account_status = AccountStatus.ACTIVE
    charged_periods = set()
    for kind, arg, reason in sequence:
        decision = None
        if kind == "wait":
            now += timedelta(seconds=arg)
        elif kind == "boundary":
            boundary = subject.next_attempt_at or subject.current_period_end
            now = max(now, boundary + timedelta(seconds=arg))
        elif kind == "account":
            account_status = arg
        elif kind == "act":
            line = reactivation_line(subject, now, CATALOG)
            quote = QuoteRef("quo", line.amount) if line else None
            try:
                decision = decide(
                    subject,
                    Command(arg, user("u"), reason=reason, quote=quote),
                    now,
                    account_status=account_status,
                    catalog=CATALOG,
                )
            except DomainError:
                continue
        elif kind == "renew":
            renewal = decide_renewal(subject, now, account_status=account_status, catalog=CATALOG)
            if renewal is None:
                continue
            if subject.status is Status.CANCEL_PENDING:
                raise AssertionError("a cancel_pending integration reached a renewal")
            if renewal.charge is not None:
                assert renewal.charge.amount > 0
                if arg:
                    period = renewal.charge.period_start
                    assert period not in charged_periods, "charged twice for one period"
                    charged_periods.add(period)
            decision = renewal.paid if (arg or renewal.charge is None) else renewal.declined
        elif kind == "delete":
            decision = decide_deletion(subject, now)
            if decision is None:
                continue
            assert now >= subject.current_period_end, "deleted before its paid period ended"
        if decision is None or decision.noop:
            continue
        if decision.after is None:
            # Deleted: at its period end, or at once when no paid period is left to serve.
            assert subject.status in (Status.CANCEL_PENDING, Status.SUSPENDED) or (
                subject.billing_state is BillingState.PAST_DUE
            )
            return
        before, subject = subject, decision.after
        assert subject.version == before.version + 1
        if before.status is not subject.status:
            assert (before.status, subject.status) in ALLOWED_CHANGES
        check_invariants(subject)


@given(valid_anchor(), st.integers(0, 400 * 86_400), st.sampled_from(list(AccountStatus)))
def test_a_cancel_pending_integration_is_never_charged_at_renewal(anchor, seconds, account_status):
    subject = integration(Status.CANCEL_PENDING, anchor=anchor)
    assert (
        decide_renewal(
            subject,
            anchor + timedelta(seconds=seconds),
            account_status=account_status,
            catalog=CATALOG,
        )
        is None
    )


@given(
    st.sampled_from([SuspensionReason.NON_PAYMENT, SuspensionReason.ACCOUNT_CANCELLED]),
    valid_anchor(),
)
def test_a_suspended_integration_is_never_renewed(reason, anchor):
    subject = integration(Status.SUSPENDED, anchor=anchor, suspension_reason=reason)
    assert (
        decide_renewal(
            subject,
            anchor + timedelta(days=400),
            account_status=AccountStatus.ACTIVE,
            catalog=CATALOG,
        )
        is None
    )
